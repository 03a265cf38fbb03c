"""Backups at the storage layer: a copy taken mid-journal is whole, a Redis store comes
back into LMDB with its seqs, trimmed logs, snapshots and metadata, and a backup never
lands half-written where a complete one is expected."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import StorageError
from engine.storage import Retention
from engine.storage.backup import backup_lmdb, backup_redis, read_manifest
from engine.storage.kv_log import KVLogStore
from engine.storage.lmdb_kv import LmdbKV
from engine.storage.tools import verify
from engine.store import open_store
from tests.engine.helpers import content, typing_updates
from tests.redis_process import RedisProcess


def _fill_across_rooms(store: KVLogStore, rooms: int, rounds: int) -> None:
    """Appends of several rooms at once: what the journal holds until it folds."""
    from engine.storage.docstore import Append, DocStore

    docs = DocStore(store)
    texts = {f"room-{i}": typing_updates("x" * rounds, client_id=i + 1) for i in range(rooms)}
    for step in range(rounds):
        docs.append_many([Append(room, updates[step], "ann") for room, updates in texts.items()])


def test_an_lmdb_backup_taken_mid_journal_holds_every_committed_append(tmp_path: Path) -> None:
    store = KVLogStore(LmdbKV(tmp_path / "live"), journal_entries=1000)
    _fill_across_rooms(store, rooms=5, rounds=40)
    assert store.kv.scan("journal", b"", keys_only=True), "the journal should hold appends"
    live = {room: store.dump_room(room) for room in store.rooms()}

    result = backup_lmdb(tmp_path / "live", tmp_path / "copy", kv=store.kv)  # type: ignore[arg-type]

    assert result.rooms == {room: 40 for room in live}
    assert read_manifest(tmp_path / "copy")["rooms"] == result.rooms
    copy = KVLogStore(LmdbKV(tmp_path / "copy"))
    assert copy.kv.scan("journal", b"", keys_only=True) == [], "the backup folds the journal"
    for room, dump in live.items():
        assert copy.dump_room(room) == dump
    copy.close()
    assert verify(open_store(data_dir=tmp_path / "copy")).ok
    store.close()


def test_a_backup_never_overwrites_a_directory_with_content(tmp_path: Path) -> None:
    store = KVLogStore(LmdbKV(tmp_path / "live"))
    _fill_across_rooms(store, rooms=1, rounds=3)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "precious").write_text("keep me")
    with pytest.raises(StorageError, match="not empty"):
        backup_lmdb(tmp_path / "live", tmp_path / "taken", kv=store.kv)  # type: ignore[arg-type]
    assert (tmp_path / "taken" / "precious").read_text() == "keep me"
    assert not list(tmp_path.glob(".taken*")), "no partial copy left behind"
    store.close()


def test_a_redis_backup_keeps_seqs_trimmed_logs_snapshots_and_labels(
    tmp_path: Path, redis_server: RedisProcess
) -> None:
    source = open_store(redis_url=redis_server.url, retention=Retention(keep_log=False))
    for update in typing_updates("hello world", client_id=7):
        source.append("notes", update, "ann")
    source.compact("notes", force=True)  # trims the stream: the log now starts after 1
    for update in typing_updates("more", client_id=8):
        source.append("notes", update, "bob")
    source.set_meta("notes", "label:draft", b"5")
    for update in typing_updates("chat", client_id=9):
        source.append("lobby", update, None)
    expected = {room: source.load(room).updates for room in ("notes", "lobby")}
    assert source.log.first_seq("notes") not in (None, 1)

    result = backup_redis(redis_server.url, tmp_path / "copy")

    assert result.rooms == {"lobby": 4, "notes": 15}
    copy = open_store(data_dir=tmp_path / "copy")
    for room, updates in expected.items():
        assert content(copy.load(room).updates) == content(updates)
        assert copy.history(room) == source.history(room)
    assert copy.get_meta("notes", "label:draft") == b"5"
    assert copy.log.first_seq("notes") == source.log.first_seq("notes")
    assert verify(copy).ok
    copy.close()
    source.close()


def test_put_room_refuses_a_room_that_exists(tmp_path: Path) -> None:
    store = KVLogStore(LmdbKV(tmp_path / "live"))
    _fill_across_rooms(store, rooms=1, rounds=2)
    dump = store.dump_room("room-0")
    assert dump is not None
    with pytest.raises(StorageError, match="already exists"):
        store.put_room(dump)
    store.close()
