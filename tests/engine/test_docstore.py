"""DocStore: log order, group commit, snapshots that keep everything, history, faults."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Doc, Text

from engine.errors import CorruptRecord, RoomNameError, RoomNotFound, SchemaVersionError
from engine.storage import (
    KV,
    Append,
    CompactionPolicy,
    DocStore,
    LmdbKV,
    MemoryKV,
    Retention,
)
from engine.storage.records import pack, unpack
from tests.engine.helpers import content, recording_doc, typing_updates


@pytest.fixture(params=["memory", "lmdb"])
def kv(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KV]:
    store: KV = MemoryKV() if request.param == "memory" else LmdbKV(tmp_path / "kv")
    yield store
    store.close()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        self.now += 1
        return self.now


def text_of(updates: list[bytes]) -> str:
    return str(content(updates)["t"])


def test_append_assigns_per_room_sequence_numbers(kv: KV) -> None:
    store = DocStore(kv)
    seqs = store.append_many(
        [Append("a", b"\x00\x00"), Append("b", b"\x00\x00"), Append("a", b"\x00\x00")]
    )
    assert seqs == [1, 1, 2]
    assert store.append("a", b"\x00\x00") == 3


def test_rooms_with_a_shared_name_prefix_never_mix(kv: KV) -> None:
    store = DocStore(kv)
    for update in typing_updates("one"):
        store.append("doc1", update)
    for update in typing_updates("ten", client_id=2):
        store.append("doc10", update)
    assert text_of(store.load("doc1").updates) == "one"
    assert text_of(store.load("doc10").updates) == "ten"


def test_load_after_reopen_equals_what_was_appended(tmp_path: Path) -> None:
    updates = typing_updates("durable")
    store = DocStore(LmdbKV(tmp_path / "kv"))
    store.append_many([Append("room", u, "alice") for u in updates])
    store.kv.close()
    reopened = DocStore(LmdbKV(tmp_path / "kv"))
    loaded = reopened.load("room")
    assert text_of(loaded.updates) == "durable"
    assert loaded.last_seq == len(updates)
    assert reopened.append("room", updates[0]) == len(updates) + 1


def test_unknown_room_loads_empty_and_has_no_history(kv: KV) -> None:
    store = DocStore(kv)
    assert store.load("nobody").updates == []
    with pytest.raises(RoomNotFound):
        store.history("nobody")


def test_bad_room_names_are_rejected_before_anything_is_written(kv: KV) -> None:
    store = DocStore(kv)
    for name in ["", "a/../b", "x\x00y", "a" * 200, " padded", "e\u0301"]:
        with pytest.raises(RoomNameError):
            store.append(name, b"\x00\x00")
    assert store.rooms() == []


def test_history_records_who_when_and_how_much(kv: KV) -> None:
    clock = FakeClock()
    store = DocStore(kv, clock=clock)
    updates = typing_updates("abc", client_id=77)
    store.append("r", updates[0], "alice")
    store.append_many([Append("r", updates[1], "bob"), Append("r", updates[2], None)])
    entries = store.history("r")
    assert [(e.seq, e.user, e.bytes, e.clients) for e in entries] == [
        (1, "alice", len(updates[0]), (77,)),
        (2, "bob", len(updates[1]), (77,)),
        (3, None, len(updates[2]), (77,)),
    ]
    assert entries[0].ts < entries[1].ts == entries[2].ts
    assert [e.seq for e in store.history("r", after=1, limit=1)] == [2]


def test_compaction_keeps_content_and_load_uses_the_snapshot(kv: KV) -> None:
    store = DocStore(kv, policy=CompactionPolicy(every_updates=10))
    for update in typing_updates("hello world, again"):
        store.append("r", update)
    snapshot = store.compact("r")
    assert snapshot is not None and snapshot.seq == 18
    loaded = store.load("r")
    assert loaded.snapshot_seq == 18 and len(loaded.updates) == 1
    assert text_of(loaded.updates) == "hello world, again"
    assert store.compact("r") is None  # nothing new since


def test_compaction_keeps_updates_whose_dependency_has_not_arrived(kv: KV) -> None:
    """A Doc drops pending updates when encoded; the snapshot must not (abc + def)."""
    updates = typing_updates("abcdef")
    store = DocStore(kv)
    for update in updates[:3] + updates[4:]:  # "d" is missing: "e", "f" are pending
        store.append("r", update)
    store.compact("r", force=True)
    assert text_of(store.load("r").updates) == "abc"
    store.append("r", updates[3])
    assert text_of(store.load("r").updates) == "abcdef"
    store.compact("r", force=True)
    assert text_of(store.load("r").updates) == "abcdef"


def test_trimming_retention_drops_covered_log_but_keeps_content(kv: KV) -> None:
    store = DocStore(kv, retention=Retention(keep_log=False, keep_snapshots=1))
    updates = typing_updates("trimmed")
    for update in updates[:4]:
        store.append("r", update)
    store.compact("r", force=True)
    for update in updates[4:]:
        store.append("r", update)
    store.compact("r", force=True)
    assert text_of(store.load("r").updates) == "trimmed"
    assert kv.scan("log", struct.pack(">Q", store.room_id("r") or 0)) == []
    assert len(kv.scan("snapshots", b"")) == 1
    with pytest.raises(CorruptRecord, match="missing"):
        store.state_at("r", 2)


def test_state_at_rebuilds_any_past_position(kv: KV) -> None:
    store = DocStore(kv, policy=CompactionPolicy(every_updates=3))
    updates = typing_updates("rewind")
    for i, update in enumerate(updates, start=1):
        store.append("r", update)
        if i % 3 == 0:
            store.compact("r")
    for seq in range(len(updates) + 1):
        assert text_of([store.state_at("r", seq)]) == "rewind"[:seq]


def test_a_torn_snapshot_falls_back_to_the_previous_one_and_the_log(kv: KV) -> None:
    store = DocStore(kv)
    updates = typing_updates("torn")
    for update in updates[:2]:
        store.append("r", update)
    store.compact("r", force=True)
    for update in updates[2:]:
        store.append("r", update)
    newest = store.compact("r", force=True)
    assert newest is not None
    key = struct.pack(">QQ", store.room_id("r") or 0, newest.seq)
    good = kv.get("snapshots", key)
    assert good is not None
    kv.write([("snapshots", key, good[: len(good) // 2])])
    assert text_of(store.load("r").updates) == "torn"


def test_a_corrupt_log_record_names_room_and_seq_and_other_rooms_still_load(kv: KV) -> None:
    store = DocStore(kv)
    for update in typing_updates("ok"):
        store.append("good", update)
    for update in typing_updates("bad", client_id=5):
        store.append("bad", update)
    key = struct.pack(">QQ", store.room_id("bad") or 0, 2)
    value = kv.get("log", key)
    assert value is not None
    kv.write([("log", key, value[:-1] + bytes([value[-1] ^ 0xFF]))])
    with pytest.raises(CorruptRecord) as caught:
        store.load("bad")
    assert caught.value.room == "bad" and caught.value.seq == 2
    assert text_of(store.load("good").updates) == "ok"


def test_records_of_an_unknown_schema_version_are_an_error() -> None:
    record = pack({"seq": 1})
    assert unpack(record)["v"] == 1
    future = pack({"seq": 1, "v": 99})
    with pytest.raises(SchemaVersionError, match="99"):
        unpack(future)


def test_deeply_nested_cbor_on_disk_is_a_storage_error_not_a_crash() -> None:
    import zlib

    body = b"\x81" * 200_000 + b"\x00"
    record = struct.pack(">I", zlib.crc32(body)) + body
    with pytest.raises(Exception) as caught:
        unpack(record)
    from engine.errors import StorageError

    assert isinstance(caught.value, StorageError)


def test_delete_room_removes_everything(kv: KV) -> None:
    store = DocStore(kv)
    for update in typing_updates("gone"):
        store.append("r", update)
    store.compact("r", force=True)
    assert store.delete_room("r")
    assert store.meta("r") is None and store.load("r").updates == []
    assert kv.scan("log", b"") == [] and kv.scan("snapshots", b"") == []


def test_group_commit_of_many_rooms_is_one_atomic_write(kv: KV) -> None:
    writes: list[int] = []
    original = kv.write

    def counting_write(puts: Any, deletes: Any = ()) -> None:
        writes.append(len(puts))
        original(puts, deletes)

    kv.write = counting_write  # type: ignore[method-assign]
    store = DocStore(kv)
    batch = [Append(f"room{i % 7}", u) for i, u in enumerate(typing_updates("x" * 50))]
    store.append_many(batch)
    assert len(writes) == 1
    assert sum(m.last_seq for m in store.rooms()) == 50


def test_failed_group_commit_leaves_counters_unchanged() -> None:
    kv = MemoryKV()
    store = DocStore(kv)
    store.append("r", b"\x00\x00")

    def failing_write(puts: Any, deletes: Any = ()) -> None:
        from engine.errors import StorageError

        raise StorageError("disk full")

    original = kv.write
    kv.write = failing_write  # type: ignore[method-assign]
    with pytest.raises(Exception, match="disk full"):
        store.append("r", b"\x00\x00")
    kv.write = original  # type: ignore[method-assign]
    assert store.append("r", b"\x00\x00") == 2


def test_doc_text_helper_sanity() -> None:
    doc: Doc[Any] = Doc()
    doc, updates = recording_doc()
    doc.get("t", type=Text).insert(0, "x")
    assert text_of(updates) == "x"
