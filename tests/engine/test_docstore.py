"""The DocStore on every log store (memory, LMDB, a real redis-server): one contract.

Every test here runs three times. Faults are injected through the contract itself (a
garbage record appended like any other, a snapshot replaced by torn bytes), so the same
checks hold on every backend.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.document import rebuild
from engine.errors import (
    CorruptRecord,
    HistoryFolded,
    RoomNameError,
    RoomNotFound,
    SchemaVersionError,
    StorageError,
)
from engine.storage import (
    Append,
    CompactionPolicy,
    DocStore,
    KVLogStore,
    LmdbKV,
    LogStore,
    MemoryKV,
    Retention,
)
from engine.storage.records import pack, unpack
from engine.storage.redis_keys import key
from engine.storage.redis_log import RedisLogStore
from tests.engine.helpers import content, typing_updates
from tests.redis_process import RedisProcess

BACKENDS = ["memory", "lmdb", "redis"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def opener(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    """Opens (and reopens) a log store of the test's backend on the same data."""
    memory = MemoryKV()
    redis_url = None
    if backend == "redis":
        redis_url = request.getfixturevalue("redis_server").url
    opened: list[LogStore] = []

    def open_log() -> LogStore:
        log: LogStore
        if backend == "memory":
            log = KVLogStore(memory)
        elif backend == "lmdb":
            log = KVLogStore(LmdbKV(tmp_path / "kv"))
        else:
            assert redis_url is not None
            log = RedisLogStore(redis_url)
        opened.append(log)
        return log

    yield open_log
    if backend != "memory":
        for log in opened:
            try:
                log.close()
            except Exception:  # closed by the test already
                pass


@pytest.fixture
def log(opener: Any) -> LogStore:
    return opener()  # type: ignore[no-any-return]


def docstore(log: LogStore, **options: Any) -> DocStore:
    return DocStore(log, rebuild=rebuild, **options)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        self.now += 1
        return self.now


def text_of(updates: list[bytes]) -> str:
    return str(content(updates)["t"])


def tear_snapshot(log: LogStore, room: str, seq: int) -> None:
    """Replace the stored snapshot at `seq` by half of its bytes (a torn write)."""
    (good,) = [value for s, value in log.snapshots(room, seq) if s == seq][:1]
    torn = good[: len(good) // 2]
    if isinstance(log, RedisLogStore):
        log.redis.zrem(key("snaps", room), good)
        log.redis.zadd(key("snaps", room), {torn: seq})
    else:
        assert isinstance(log, KVLogStore)
        room_id = log._room_id(room)
        assert room_id is not None
        log.kv.write([("snapshots", room_id.to_bytes(8, "big") + seq.to_bytes(8, "big"), torn)])


def test_append_assigns_per_room_sequence_numbers(log: LogStore) -> None:
    store = docstore(log)
    seqs = store.append_many(
        [Append("a", b"\x00\x00"), Append("b", b"\x00\x00"), Append("a", b"\x00\x00")]
    )
    assert seqs == [1, 1, 2]
    assert store.append("a", b"\x00\x00") == 3


def test_rooms_with_a_shared_name_prefix_never_mix(log: LogStore) -> None:
    store = docstore(log)
    for update in typing_updates("one"):
        store.append("doc1", update)
    for update in typing_updates("ten", client_id=2):
        store.append("doc10", update)
    for update in typing_updates("colon", client_id=3):
        store.append("a:b", update)
    assert text_of(store.load("doc1").updates) == "one"
    assert text_of(store.load("doc10").updates) == "ten"
    assert store.load("a").updates == [] and text_of(store.load("a:b").updates) == "colon"


def test_load_after_reopen_equals_what_was_appended(opener: Any, backend: str) -> None:
    updates = typing_updates("durable")
    store = docstore(opener())
    store.append_many([Append("room", u, "alice") for u in updates])
    store.set_meta("room", "cursor:x", b"7")
    if backend != "memory":
        store.close()
    reopened = docstore(opener())
    loaded = reopened.load("room")
    assert text_of(loaded.updates) == "durable"
    assert loaded.last_seq == len(updates)
    assert reopened.append("room", updates[0]) == len(updates) + 1
    assert reopened.get_meta("room", "cursor:x") == b"7"


def test_unknown_room_loads_empty_and_has_no_history(log: LogStore) -> None:
    store = docstore(log)
    assert store.load("nobody").updates == []
    with pytest.raises(RoomNotFound):
        store.history("nobody")
    with pytest.raises(RoomNotFound):
        store.state_at("nobody", 1)
    with pytest.raises(StorageError):
        store.set_meta("nobody", "x", b"1")


def test_bad_room_names_are_rejected_before_anything_is_written(log: LogStore) -> None:
    store = docstore(log)
    for name in ["", "a/../b", "x\x00y", "a" * 200, " padded", "e\u0301"]:
        with pytest.raises(RoomNameError):
            store.append(name, b"\x00\x00")
    assert store.rooms() == []


def test_history_records_who_when_and_how_much(log: LogStore) -> None:
    store = docstore(log, clock=FakeClock())
    updates = typing_updates("abc", client_id=77)
    store.append("r", updates[0], "alice")
    store.append_many([Append("r", updates[1], "bob"), Append("r", updates[2], None, restore_of=1)])
    entries = store.history("r")
    assert [(e.seq, e.user, e.bytes, e.clients, e.restore_of) for e in entries] == [
        (1, "alice", len(updates[0]), (77,), None),
        (2, "bob", len(updates[1]), (77,), None),
        (3, None, len(updates[2]), (77,), 1),
    ]
    assert entries[0].ts < entries[1].ts == entries[2].ts
    assert [e.seq for e in store.history("r", after=1, limit=1)] == [2]


def test_compaction_keeps_content_and_load_uses_the_snapshot(log: LogStore) -> None:
    store = docstore(log, policy=CompactionPolicy(every_updates=10))
    for update in typing_updates("hello world, again"):
        store.append("r", update)
    assert store.snapshot_due("r")
    snapshot = store.compact("r")
    assert snapshot is not None and snapshot.seq == 18
    loaded = store.load("r")
    assert loaded.snapshot_seq == 18 and len(loaded.updates) == 1
    assert text_of(loaded.updates) == "hello world, again"
    assert not store.snapshot_due("r")
    assert store.compact("r") is None  # nothing new since


def test_a_snapshot_handed_in_is_stored_as_given(log: LogStore) -> None:
    """The room actor hands in its live document's encoding: storage builds nothing."""
    store = DocStore(log)  # no rebuild function at all
    updates = typing_updates("live")
    for update in updates:
        store.append("r", update)
    encoded = rebuild(updates)
    snapshot = store.compact("r", state=(len(updates), encoded), force=True)
    assert snapshot is not None and snapshot.update == encoded
    assert store.load("r") == store.load("r").__class__("r", [encoded], len(updates), len(updates))
    with pytest.raises(StorageError, match="rebuild"):
        store.state_at("r", 2)


def test_compaction_keeps_updates_whose_dependency_has_not_arrived(log: LogStore) -> None:
    """A Doc drops pending updates when encoded; the snapshot must not (abc + def)."""
    updates = typing_updates("abcdef")
    store = docstore(log)
    for update in updates[:3] + updates[4:]:  # "d" is missing: "e", "f" are pending
        store.append("r", update)
    store.compact("r", force=True)
    assert text_of(store.load("r").updates) == "abc"
    store.append("r", updates[3])
    assert text_of(store.load("r").updates) == "abcdef"
    store.compact("r", force=True)
    assert text_of(store.load("r").updates) == "abcdef"


def test_trimming_retention_drops_covered_log_but_keeps_content(log: LogStore) -> None:
    store = docstore(log, retention=Retention(keep_log=False, keep_snapshots=1))
    updates = typing_updates("trimmed")
    for update in updates[:4]:
        store.append("r", update)
    store.compact("r", force=True)
    assert log.first_seq("r") is None and len(log.snapshots("r")) == 1
    for update in updates[4:]:
        store.append("r", update)
    assert log.first_seq("r") == 5
    store.compact("r", force=True)
    loaded = store.load("r")
    assert text_of(loaded.updates) == "trimmed" and loaded.snapshot_seq == len(updates)
    assert log.read("r") == [] and [s for s, _ in log.snapshots("r")] == [len(updates)]
    with pytest.raises(HistoryFolded, match=f"oldest position available is seq {len(updates)}"):
        store.state_at("r", 2)
    assert text_of([store.state_at("r", len(updates))]) == "trimmed"


def test_state_at_rebuilds_any_past_position(log: LogStore) -> None:
    store = docstore(log, policy=CompactionPolicy(every_updates=3))
    updates = typing_updates("rewind")
    for i, update in enumerate(updates, start=1):
        store.append("r", update)
        if i % 3 == 0:
            store.compact("r")
    for seq in range(len(updates) + 1):
        assert text_of([store.state_at("r", seq)]) == "rewind"[:seq]


def test_a_torn_snapshot_falls_back_to_the_previous_one_not_the_whole_log(log: LogStore) -> None:
    store = docstore(log)
    updates = typing_updates("torn!")
    for update in updates[:2]:
        store.append("r", update)
    store.compact("r", force=True)
    for update in updates[2:]:
        store.append("r", update)
    newest = store.compact("r", force=True)
    assert newest is not None and newest.seq == 5
    tear_snapshot(log, "r", 5)
    assert log.newest_snapshot_seq("r") == 5  # unreadable, still what a new one must replace
    loaded = store.load("r")
    assert loaded.snapshot_seq == 2  # the previous snapshot, then the tail after it
    assert len(loaded.updates) == 1 + 3
    assert text_of(loaded.updates) == "torn!"
    assert any("snapshot at seq 5" in p for p in store.check_records("r"))


def test_a_snapshot_says_whether_it_loads_whole(log: LogStore) -> None:
    store = docstore(log)
    updates = typing_updates("whole")
    for update in updates:
        store.append("r", update)
    assert not store.load("r").snapshot_whole  # no snapshot yet
    store.compact("r", state=(3, rebuild(updates[:3])), force=True, whole=True)
    assert store.load("r").snapshot_whole
    store.compact("r", force=True)  # rebuilt by the store: not known to be whole
    loaded = store.load("r")
    assert loaded.snapshot_seq == 5 and not loaded.snapshot_whole


def test_updates_at_say_whether_they_start_with_a_whole_snapshot(log: LogStore) -> None:
    """What a restore merges, and whether its first update may load without the scan:
    only a snapshot stored as whole says so, never a log record or a store-made one."""
    store = docstore(log)
    updates = typing_updates("whole")
    for update in updates:
        store.append("r", update)
    assert store.updates_and_whole_at("r", 4) == (updates[:4], False)  # log records only
    store.compact("r", state=(3, rebuild(updates[:3])), force=True, whole=True)
    at_snapshot, whole = store.updates_and_whole_at("r", 3)
    assert whole and len(at_snapshot) == 1 and text_of(at_snapshot) == text_of(updates[:3])
    after, whole = store.updates_and_whole_at("r", 5)
    assert whole and after[1:] == updates[3:5] and after == store.updates_at("r", 5)
    store.compact("r", force=True)  # rebuilt by the store: not known to be whole
    assert store.updates_and_whole_at("r", 5)[1] is False
    assert store.updates_and_whole_at("r", 0) == ([], False)


class SnapshotReads:
    """A log store whose snapshot reads are counted (how many whole documents came back)."""

    def __init__(self, log: LogStore) -> None:
        self.log = log
        self.values_read = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.log, name)

    def snapshots(
        self, room: str, upto: int | None = None, limit: int | None = None
    ) -> list[tuple[int, bytes]]:
        found = self.log.snapshots(room, upto, limit)
        self.values_read += len(found)
        return found

    def decode_snapshots(
        self, room: str, decode: Any, upto: int | None = None, limit: int | None = None
    ) -> list[tuple[int, Any]]:
        found = self.log.decode_snapshots(room, decode, upto, limit)
        self.values_read += len(found)
        return found


def test_a_load_and_a_compaction_read_no_snapshot_but_the_newest(log: LogStore) -> None:
    updates = typing_updates("several snapshots")
    counted = SnapshotReads(log)
    store = docstore(counted, retention=Retention(keep_snapshots=0))
    for n, update in enumerate(updates, 1):
        store.append("r", update)
        if n % 4 == 0:
            store.compact("r", force=True)
    assert [seq for seq, _ in log.snapshots("r")] == [16, 12, 8, 4]
    assert [seq for seq, _ in log.snapshots("r", limit=2)] == [16, 12]
    assert [seq for seq, _ in log.snapshots("r", 13, limit=1)] == [12]
    counted.values_read = 0
    loaded = store.load("r")
    assert loaded.snapshot_seq == 16 and text_of(loaded.updates) == "several snapshots"
    assert counted.values_read == 1
    counted.values_read = 0
    store.compact("r", force=True)
    assert counted.values_read <= 1


def test_a_compare_and_set_lets_only_one_racing_snapshot_win(log: LogStore) -> None:
    store = docstore(log, retention=Retention(keep_log=False, keep_snapshots=0))
    updates = typing_updates("race")
    for update in updates:
        store.append("r", update)
    record = pack({"seq": 2})
    assert log.put_snapshot("r", 2, record, expect=0, keep=0, trim_log=False)
    # a compactor that read "no snapshot yet" loses and trims nothing
    assert not log.put_snapshot("r", 4, record, expect=0, keep=0, trim_log=True)
    assert log.first_seq("r") == 1 and [s for s, _ in log.snapshots("r")] == [2]


def test_a_corrupt_log_record_names_room_and_seq_and_other_rooms_still_load(
    log: LogStore,
) -> None:
    store = docstore(log)
    for update in typing_updates("ok"):
        store.append("good", update)
    for update in typing_updates("bad", client_id=5):
        store.append("bad", update)
    log.append([("bad", b"\x00\x00\x00\x01not a record")], 0.0)
    with pytest.raises(CorruptRecord) as caught:
        store.load("bad")
    assert caught.value.room == "bad" and caught.value.seq == 4
    assert text_of(store.load("good").updates) == "ok"
    assert [p for p in store.check_records("bad") if "seq 4" in p]


def test_records_of_an_unknown_schema_version_are_an_error() -> None:
    record = pack({"seq": 1})
    assert unpack(record)["v"] == 1
    future = pack({"seq": 1, "v": 99})
    with pytest.raises(SchemaVersionError, match="99"):
        unpack(future)


def test_deeply_nested_cbor_on_disk_is_a_storage_error_not_a_crash() -> None:
    import struct
    import zlib

    body = b"\x81" * 200_000 + b"\x00"
    record = struct.pack(">I", zlib.crc32(body)) + body
    with pytest.raises(StorageError):
        unpack(record)


def test_delete_room_removes_everything(log: LogStore) -> None:
    store = docstore(log)
    for update in typing_updates("gone"):
        store.append("r", update)
    store.compact("r", force=True)
    store.set_meta("r", "label:v1", b"2")
    store.append("other", b"\x00\x00")
    assert store.delete_room("r")
    assert not store.delete_room("r")
    assert store.info("r") is None and store.load("r").updates == []
    assert log.read("r") == [] and log.snapshots("r") == [] and log.scan_meta("r", "") == []
    assert [info.name for info in store.rooms()] == ["other"]
    assert store.append("r", b"\x00\x00") == 1  # a new room of the same name starts over


def test_metadata_sets_deletes_scans_and_creates_only_once(log: LogStore) -> None:
    store = docstore(log)
    store.append("r", b"\x00\x00")
    store.append("r2", b"\x00\x00")
    assert store.set_meta("r", "label:b", b"2", only_new=True)
    assert not store.set_meta("r", "label:b", b"9", only_new=True)
    store.set_meta("r", "label:a", b"1")
    store.set_meta("r", "cursor:hooks", b"5")
    store.set_meta("r2", "label:z", b"1")
    assert store.scan_meta("r", "label:") == [("label:a", b"1"), ("label:b", b"2")]
    store.set_meta("r", "label:a", None)
    assert store.scan_meta("r", "label:") == [("label:b", b"2")]
    assert store.get_meta("r", "cursor:hooks") == b"5"


def test_a_metadata_counter_adds_up_from_absent_and_stays_per_room(log: LogStore) -> None:
    store = docstore(log)
    store.append("r", b"\x00\x00")
    store.append("r2", b"\x00\x00")
    assert store.add_to_meta("r", "refusals", 1) == 1
    assert store.add_to_meta("r", "refusals", 2) == 3
    assert store.get_meta("r", "refusals") == b"3"
    assert store.get_meta("r2", "refusals") is None
    assert store.add_to_meta("r2", "refusals", 1) == 1
    with pytest.raises(StorageError):
        store.add_to_meta("absent", "refusals", 1)
    assert store.info("absent") is None


def test_info_counts_seq_and_bytes_and_rooms_are_listed(log: LogStore) -> None:
    store = docstore(log)
    store.append_many([Append(f"room{i % 7}", u) for i, u in enumerate(typing_updates("x" * 50))])
    infos = store.rooms()
    assert [i.name for i in infos] == [f"room{i}" for i in range(7)]
    assert sum(i.last_seq for i in infos) == 50
    assert all(i.log_bytes == sum(len(v) for _, v in log.read(i.name)) for i in infos)


def test_failed_group_commit_writes_nothing_and_leaves_counters_unchanged() -> None:
    kv = MemoryKV()
    store = docstore(KVLogStore(kv))
    store.append("r", b"\x00\x00")

    def failing_write(puts: Any, deletes: Any = ()) -> None:
        raise StorageError("disk full")

    original = kv.write
    kv.write = failing_write  # type: ignore[method-assign]
    with pytest.raises(StorageError, match="disk full"):
        store.append_many([Append("r", b"\x00\x00"), Append("new", b"\x00\x00")])
    kv.write = original  # type: ignore[method-assign]
    assert store.append("r", b"\x00\x00") == 2
    assert store.info("new") is None


def test_redis_server_fixture_is_real(redis_server: RedisProcess) -> None:
    log = RedisLogStore(redis_server.url)
    try:
        assert log.append([("r", b"x")], 1.0) == [1]
        assert log.durability_warning() is None  # AOF with fsync always
    finally:
        log.close()


def test_history_reads_sizes_without_decoding_updates(
    log: LogStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """History pages list sizes from the records' headers: a page of megabyte updates
    must not decode (copy) each update just to say how big it was."""
    store = docstore(log, clock=FakeClock())
    big = typing_updates("x" * 3000, client_id=9)[-1]
    store.append("r", typing_updates("ab", client_id=5)[0], "alice")
    store.append_many([Append("r", big, "bob", restore_of=1)])
    expected = [(e.seq, e.user, e.bytes, e.clients, e.restore_of) for e in store.history("r")]
    assert expected[1] == (2, "bob", len(big), (9,), 1)

    def no_full_decode(value: Any) -> Any:
        raise AssertionError("history decoded a whole record")

    monkeypatch.setattr("engine.storage.docstore.unpack", no_full_decode)
    monkeypatch.setattr("engine.storage.records.unpack", no_full_decode)
    got = [(e.seq, e.user, e.bytes, e.clients, e.restore_of) for e in store.history("r")]
    assert got == expected
    assert [e.seq for e in store.history("r", after=1, limit=5, max_bytes=1)] == [2]


def test_history_names_a_corrupt_record(log: LogStore) -> None:
    store = docstore(log)
    store.append("r", typing_updates("a")[0])
    log.append([("r", b"\x00\x01garbage")], 1.0)
    with pytest.raises(CorruptRecord, match="seq 2"):
        store.history("r")
