"""The client's local replica on the KV protocol: on LMDB on disk and in memory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cbor2
import pytest
from pycrdt import Array, Doc

from engine.client import Client, LocalStore, ReplicaInUse, ReplicaKey
from engine.client.local_store import FOLD_AFTER
from engine.client.shared_kv import open_store_paths
from engine.errors import SchemaVersionError, StorageError
from engine.storage.kv import KV
from engine.storage.lmdb_kv import LmdbKV
from engine.storage.memory_kv import MemoryKV

KEY = ReplicaKey.for_url("ws://127.0.0.1:8080/rooms", "lobby")


@pytest.fixture(params=["lmdb", "memory"])
def kv(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KV]:
    store: KV = LmdbKV(tmp_path / "kv") if request.param == "lmdb" else MemoryKV()
    yield store
    store.close()


def edits(*texts: str) -> list[bytes]:
    """One update per appended text, each depending on the one before."""
    doc: Doc[Any] = Doc()
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(bytes(event.update)))
    for text in texts:
        doc.get("items", type=Array).append(text)
    return updates


def replay(*updates: bytes) -> list[Any]:
    doc: Doc[Any] = Doc()
    for update in updates:
        doc.apply_update(update)
    return list(doc.get("items", type=Array).to_py() or [])


def test_folding_keeps_updates_still_waiting_for_their_predecessors(kv: KV) -> None:
    """Folding through a Doc (`get_update`) would drop the pending third edit."""
    one, two, three = edits("one", "two", "three")
    store = LocalStore(kv, KEY)
    store.append(one)
    store.append(three)  # arrived before `two`: pending

    state = LocalStore(kv, KEY).load()

    assert state is not None
    assert replay(state, two) == ["one", "two", "three"]


def test_marks_keep_growing_across_folds(kv: KV) -> None:
    updates = edits(*(f"edit {n}" for n in range(FOLD_AFTER + 3)))
    store = LocalStore(kv, KEY)
    marks = [store.append(update) for update in updates]

    again = LocalStore(kv, KEY)
    state = again.load()

    assert marks == list(range(1, len(updates) + 1))
    assert again.last_seq == marks[-1]
    assert again.append(edits("later")[0]) == marks[-1] + 1
    assert state is not None
    assert replay(state) == [f"edit {n}" for n in range(FOLD_AFTER + 3)]
    assert len(kv.scan("log", KEY.id)) <= 3  # folded once on the way, then folded on load


def test_replicas_of_one_room_on_two_servers_stay_apart(kv: KV) -> None:
    on_a = LocalStore(kv, ReplicaKey.for_url("ws://127.0.0.1:8080/rooms", "x"))
    on_b = LocalStore(kv, ReplicaKey.for_url("ws://127.0.0.1:8081/rooms", "x"))
    on_a.append(edits("from a")[0])

    assert on_b.load() is None
    state = LocalStore(kv, on_a.key).load()
    assert state is not None and replay(state) == ["from a"]


def test_rooms_whose_names_share_a_prefix_stay_apart(kv: KV) -> None:
    LocalStore(kv, ReplicaKey.for_url("ws://h/rooms", "doc1")).append(edits("one")[0])
    assert LocalStore(kv, ReplicaKey.for_url("ws://h/rooms", "doc10")).load() is None
    assert LocalStore(kv, ReplicaKey.for_url("ws://h/rooms/doc", "1")).load() is None


def test_the_server_part_of_a_key_ignores_spelling_but_not_the_place() -> None:
    def server(url: str) -> str:
        return ReplicaKey.for_url(url, "r").server

    assert server("ws://Example.ORG/rooms/") == "ws://example.org:80/rooms"
    assert server("ws://example.org:80/rooms") == "ws://example.org:80/rooms"
    assert server("wss://example.org/rooms") == "wss://example.org:443/rooms"
    assert server("ws://[::1]:9000/rooms") == "ws://[::1]:9000/rooms"
    assert len({server("ws://h:1/rooms"), server("ws://h:2/rooms"), server("ws://h:1/x")}) == 3


def test_the_confirmed_mark_survives_a_reopen(tmp_path: Path) -> None:
    store = LocalStore.open(tmp_path, KEY)
    for update in edits("a", "b"):
        store.append(update)
    store.set_confirmed(1)
    store.close()

    again = LocalStore.open(tmp_path, KEY)
    try:
        state = again.load()
        assert (again.confirmed, again.last_seq) == (1, 2)
        assert state is not None and replay(state) == ["a", "b"]
    finally:
        again.close()


def test_an_unknown_record_version_is_an_error_not_a_misread(kv: KV) -> None:
    kv.write([("meta", KEY.id, cbor2.dumps({"v": 2, "confirmed": 5}))])
    with pytest.raises(SchemaVersionError):
        LocalStore(kv, KEY)


def test_one_directory_is_one_store_shared_until_the_last_replica_closes(tmp_path: Path) -> None:
    (tmp_path / "link").symlink_to(tmp_path / "store", target_is_directory=True)
    first = LocalStore.open(tmp_path / "store", ReplicaKey.for_url("ws://h/rooms", "a"))
    second = LocalStore.open(tmp_path / "link", ReplicaKey.for_url("ws://h/rooms", "b"))
    assert second.kv is first.kv
    first.close()
    second.append(edits("still open")[0])  # the store outlived the first replica
    assert open_store_paths() == [(tmp_path / "store").resolve()]
    second.close()
    assert open_store_paths() == []


def test_one_replica_has_one_open_writer(tmp_path: Path) -> None:
    store = LocalStore.open(tmp_path, KEY)
    try:
        with pytest.raises(ReplicaInUse):
            LocalStore.open(tmp_path, KEY)
    finally:
        store.close()
    LocalStore.open(tmp_path, KEY).close()  # free again once closed


def test_a_stored_replica_that_does_not_apply_is_a_storage_error(tmp_path: Path) -> None:
    store = LocalStore.open(tmp_path, KEY)
    store.append(b"\x01\x01\xff\xff\xff\xff\x0f\x00\x28")  # a truncated update
    store.close()
    with pytest.raises(StorageError):
        Client("ws://127.0.0.1:8080/rooms", "lobby", store_path=tmp_path)
    assert open_store_paths() == []  # the store was given back
