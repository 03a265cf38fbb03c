"""The KV log store's runs (one log value per room per append) and the fast record encoder.

Runs must read back entry by entry exactly like one record per seq (any after / upto /
limit), stores written with one record per seq must still load, and a torn run must be an
error naming the room and seq, never a shorter log.
"""

from __future__ import annotations

import random
import struct
import zlib
from pathlib import Path

import pytest

from engine.errors import CorruptRecord
from engine.storage import Append, DocStore, KVLogStore, LmdbKV, MemoryKV, Retention
from engine.storage.records import UpdateRecord, pack, pack_update, unpack
from tests.engine.helpers import typing_updates


def _legacy_append(log: KVLogStore, room: str, records: list[bytes], now: float) -> None:
    """What stores written before runs hold: one value per seq."""
    for record in records:
        log.append([(room, record)], now)


def _record(seq: int) -> bytes:
    return pack(UpdateRecord(0, 1.0, f"user{seq}", (seq,), b"u%d" % seq).to_map())


@pytest.mark.parametrize("journal_entries", [1, 7, 1000])
def test_runs_read_like_one_record_per_seq(tmp_path: Path, journal_entries: int) -> None:
    """Whether entries sit in the journal, in the log, or both (1: no journal)."""
    log = KVLogStore(LmdbKV(tmp_path), journal_entries=journal_entries)
    expected: list[tuple[int, bytes]] = []
    rng = random.Random(7)
    seq = 0
    while seq < 300:
        batch = [_record(seq + i + 1) for i in range(rng.choice([1, 1, 2, 5, 40]))]
        other = [("other", _record(0))] if rng.random() < 0.3 else []
        seqs = log.append([("room", r) for r in batch] + other, 1.0)
        assert seqs[: len(batch)] == list(range(seq + 1, seq + len(batch) + 1))
        expected += [(seq + i + 1, r) for i, r in enumerate(batch)]
        seq += len(batch)
    assert log.read("room") == expected
    assert log.first_seq("room") == 1
    assert log.info("room") is not None and log.info("room").last_seq == seq  # type: ignore[union-attr]
    for _ in range(200):
        after = rng.randrange(0, seq + 1)
        upto = rng.choice([None, rng.randrange(after, seq + 2)])
        limit = rng.choice([None, 1, 3, 50])
        want = [(s, r) for s, r in expected if s > after and (upto is None or s <= upto)]
        assert log.read("room", after, upto, limit) == want[:limit]
    log.close()


def test_appends_of_several_rooms_get_their_seqs_in_batch_order() -> None:
    log = KVLogStore(MemoryKV())
    records = [("a", _record(1)), ("b", _record(1)), ("a", _record(2)), ("a", _record(3))]
    assert log.append(records, 1.0) == [1, 1, 2, 3]
    assert log.append([("b", _record(2)), ("a", _record(4))], 1.0) == [2, 4]
    assert [s for s, _ in log.read("a")] == [1, 2, 3, 4]
    assert [s for s, _ in log.read("b", 1)] == [2]


def test_a_store_of_single_records_loads_and_grows_with_runs(tmp_path: Path) -> None:
    updates = typing_updates("abcdefghij" * 6)
    log = KVLogStore(LmdbKV(tmp_path))
    _legacy_append(log, "doc", [pack_update(1.0, "old", (1,), u) for u in updates[:30]], 1.0)
    log.close()
    store = DocStore(KVLogStore(LmdbKV(tmp_path)))
    store.append_many([Append("doc", u, "new") for u in updates[30:]])
    loaded = store.load("doc")
    assert loaded.updates == updates and loaded.last_seq == 60
    history = store.history("doc", after=28, limit=4)
    assert [(h.seq, h.user) for h in history] == [
        (29, "old"),
        (30, "old"),
        (31, "new"),
        (32, "new"),
    ]
    store.close()


def test_trimming_keeps_a_run_that_reaches_past_the_snapshot() -> None:
    updates = typing_updates("abcdefghij" * 2)
    store = DocStore(KVLogStore(MemoryKV()), retention=Retention(keep_log=False))
    store.append_many([Append("doc", u) for u in updates[:10]])
    store.compact("doc", state=(4, b"\x00\x00"), force=True)  # covers 1..4 of the run 1..10
    assert [r.seq for r in store.records("doc", 4)] == list(range(5, 11))
    store.append_many([Append("doc", u) for u in updates[10:]])
    store.compact("doc", state=(15, b"\x00\x00"), force=True)
    assert store.log.first_seq("doc") == 11  # the run 1..10 is covered whole: gone
    assert [r.seq for r in store.records("doc", 15)] == list(range(16, 21))


def test_a_torn_run_is_an_error_naming_the_room(tmp_path: Path) -> None:
    kv = LmdbKV(tmp_path)
    log = KVLogStore(kv)
    store = DocStore(log)
    store.append_many([Append("doc", u) for u in typing_updates("abcde")])
    log.fold()
    ((key, value),) = kv.scan("log", b"")
    kv.write([("log", key, value[:-3] + b"\xff\xff\xff")])
    with pytest.raises(CorruptRecord, match="doc"):
        store.load("doc")
    assert store.check_records("doc")
    store.close()


def test_a_single_record_that_starts_like_a_run_reads_as_itself() -> None:
    log = KVLogStore(MemoryKV())
    body = b"tail"
    # Forge a stored single record whose 4-byte checksum field is the run marker.
    record = b"PSLR" + body
    assert zlib.crc32(body) != struct.unpack(">I", b"PSLR")[0]  # not a valid record
    log.append([("doc", record)], 1.0)
    assert log.read("doc") == [(1, record)]


@pytest.mark.parametrize("user", [None, "", "alice", "é" * 40, "x" * 70_000])
@pytest.mark.parametrize("restore_of", [None, 0, 23, 24, 300, 1 << 40])
def test_pack_update_is_the_generic_encoding_byte_for_byte(
    user: str | None, restore_of: int | None
) -> None:
    rng = random.Random(hash((user, restore_of)))
    for clients in [(), (0,), (23, 24, 255, 256), (65535, 65536, 2**32 - 1, 2**32, 2**64 - 1)]:
        for size in (0, 23, 24, 255, 256, 70_000):
            update = rng.randbytes(size)
            ts = rng.choice([0.0, 1.7e9 + rng.random()])
            record = UpdateRecord(0, ts, user, clients, update, restore_of)
            packed = pack_update(ts, user, clients, update, restore_of)
            assert packed == pack(record.to_map())
            assert UpdateRecord.from_map(unpack(packed), 0) == record
    negative = pack_update(1.0, None, (-1,), b"")  # outside the fast path: still right
    assert UpdateRecord.from_map(unpack(negative), 0).clients == (-1,)


@pytest.mark.parametrize("kind", ["memory", "lmdb"])
def test_a_keys_only_scan_finds_the_same_keys_and_reads_no_value(kind: str, tmp_path: Path) -> None:
    kv = MemoryKV() if kind == "memory" else LmdbKV(tmp_path)
    kv.write([("log", b"a%d" % n, b"v" * n) for n in range(1, 8)] + [("log", b"b1", b"x")])
    for options in ({}, {"reverse": True}, {"start": b"a3"}, {"reverse": True, "limit": 2}):
        full = kv.scan("log", b"a", **options)
        keys = kv.scan("log", b"a", keys_only=True, **options)
        assert [k for k, _ in keys] == [k for k, _ in full] and full
        assert all(value == b"" for _, value in keys)
    kv.close()


@pytest.mark.parametrize("kind", ["memory", "lmdb"])
def test_a_scan_of_views_reads_what_a_scan_copies(kind: str, tmp_path: Path) -> None:
    kv = MemoryKV() if kind == "memory" else LmdbKV(tmp_path)
    kv.write([("snapshots", b"a%d" % n, b"v" * n * 1000) for n in range(1, 6)])
    seen: list[type] = []

    def read(key: bytes, view: memoryview) -> tuple[bytes, bytes]:
        seen.append(type(view))
        return key, bytes(view)

    for options in ({}, {"reverse": True}, {"reverse": True, "limit": 1}, {"start": b"a2"}):
        copied = kv.scan("snapshots", b"a", **options)
        assert kv.scan_views("snapshots", b"a", read, **options) == copied
    assert seen and set(seen) == {memoryview}
    kv.close()
