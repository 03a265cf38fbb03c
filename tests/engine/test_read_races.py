"""Reads of a room (snapshot + log) that a trim overtakes, on memory, LMDB and Redis.

A room is read as its newest snapshot and then the log after it, in two reads. A trim
(`keep_log=False` compaction, or a retention fold) that lands between them must not turn
a healthy store into "corrupt log ... entry is missing", nor into a stale state: the read
starts again from the snapshot the trim wrote. The interleaving is forced through the
contract (a trim run just before the log read), then left to real threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from pycrdt import Doc, Text

from engine.document import rebuild
from engine.errors import CorruptRecord, HistoryFolded
from engine.storage import (
    CompactionPolicy,
    DocStore,
    KVLogStore,
    LmdbKV,
    LogStore,
    MemoryKV,
    Retention,
)
from engine.storage.redis_log import RedisLogStore
from tests.engine.helpers import content, recording_doc

TRIMMING = Retention(keep_log=False, keep_snapshots=1)
DEADLINE = 3.0


@pytest.fixture(params=["memory", "lmdb", "redis"])
def log_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LogStore]:
    yield from open_log(request, tmp_path)


@pytest.fixture(params=["lmdb", "redis"])
def shared_log_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LogStore]:
    """A store that threads share (the memory KV is for one thread)."""
    yield from open_log(request, tmp_path)


def open_log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LogStore]:
    log: LogStore
    if request.param == "memory":
        log = KVLogStore(MemoryKV())
    elif request.param == "lmdb":
        log = KVLogStore(LmdbKV(tmp_path / "kv"))
    else:
        log = RedisLogStore(request.getfixturevalue("redis_server").url)
    yield log
    log.close()


class TrimBeforeRead:
    """The real log store, except that its next log `read` first runs `trim` (once)."""

    def __init__(self, log: LogStore, trim: Callable[[], None]) -> None:
        self._log = log
        self._trim: Callable[[], None] | None = trim

    def read(self, *args: Any, **kwargs: Any) -> list[tuple[int, bytes]]:
        trim, self._trim = self._trim, None
        if trim is not None:
            trim()
        return self._log.read(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._log, name)


class Typist:
    """Types into room "r" of a store, one update per character."""

    def __init__(self, store: DocStore) -> None:
        self.store = store
        self.doc: Doc[Any]
        self.doc, self.updates = recording_doc(1)
        self.text = self.doc.get("t", type=Text)

    def type(self, chars: str) -> None:
        for char in chars:
            self.text += char
            self.store.append("r", self.updates[-1])

    def snapshot(self) -> None:
        self.store.compact("r", force=True)


def text_of(updates: list[bytes]) -> str:
    return str(content(updates)["t"])


def test_a_load_overtaken_by_a_trim_starts_from_the_new_snapshot(log_store: LogStore) -> None:
    writer = Typist(DocStore(log_store, rebuild=rebuild, retention=TRIMMING))
    writer.type("abc")
    writer.snapshot()  # snapshot at 3, log from 4
    writer.type("defgh")

    def trim_then_type() -> None:
        writer.snapshot()  # snapshot at 8, log 4..8 trimmed
        writer.type("ij")

    reader = DocStore(cast(LogStore, TrimBeforeRead(log_store, trim_then_type)), rebuild=rebuild)
    loaded = reader.load("r")  # read snapshot 3, then the log: it now starts at 9
    assert (loaded.snapshot_seq, loaded.last_seq) == (8, 10)
    assert text_of(loaded.updates) == "abcdefghij"


def test_a_load_overtaken_by_a_trim_of_the_whole_log_is_not_stale(log_store: LogStore) -> None:
    writer = Typist(DocStore(log_store, rebuild=rebuild, retention=TRIMMING))
    writer.type("abc")
    writer.snapshot()
    writer.type("de")
    reader = DocStore(cast(LogStore, TrimBeforeRead(log_store, writer.snapshot)), rebuild=rebuild)
    loaded = reader.load("r")  # the log after snapshot 3 is gone: all of it is in 5
    assert (loaded.snapshot_seq, loaded.last_seq) == (5, 5)
    assert text_of(loaded.updates) == "abcde"


def test_state_at_overtaken_by_a_trim_is_history_folded_or_exact(log_store: LogStore) -> None:
    writer = Typist(DocStore(log_store, rebuild=rebuild, retention=TRIMMING))
    writer.type("abc")
    writer.snapshot()
    writer.type("defgh")
    reader = DocStore(cast(LogStore, TrimBeforeRead(log_store, writer.snapshot)), rebuild=rebuild)
    with pytest.raises(HistoryFolded):  # seq 6 was inside the trimmed range
        reader.state_at("r", 6)
    assert text_of([DocStore(log_store, rebuild=rebuild).state_at("r", 8)]) == "abcdefgh"


def test_a_damaged_log_is_still_reported_corrupt(log_store: LogStore) -> None:
    writer = Typist(DocStore(log_store, rebuild=rebuild, retention=TRIMMING))
    writer.type("abc")
    writer.snapshot()
    writer.type("de")
    reader = DocStore(cast(LogStore, DroppingLog(log_store, 4)), rebuild=rebuild)
    with pytest.raises(CorruptRecord, match="corrupt log at seq 4: entry is missing"):
        reader.load("r")


class DroppingLog:
    """The real log store, except that its reads leave out one seq (a lost entry)."""

    def __init__(self, log: LogStore, lost: int) -> None:
        self._log = log
        self._lost = lost

    def read(self, *args: Any, **kwargs: Any) -> list[tuple[int, bytes]]:
        return [(seq, v) for seq, v in self._log.read(*args, **kwargs) if seq != self._lost]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._log, name)


def test_loads_racing_a_trimming_writer_thread_see_every_entry(
    shared_log_store: LogStore,
) -> None:
    """Real threads, as the server runs them: one writer appending and compacting with
    `keep_log=False` every 3 updates, a reader loading the room over and over."""
    policy = CompactionPolicy(every_updates=3)
    log_store = shared_log_store
    writer = Typist(DocStore(log_store, rebuild=rebuild, retention=TRIMMING, policy=policy))
    writer.type("start")
    reader = DocStore(log_store, rebuild=rebuild)
    stop = threading.Event()
    failures: list[BaseException] = []

    def write() -> None:
        try:
            while not stop.is_set():
                writer.type("x")
                writer.store.compact("r")
        except BaseException as exc:  # reported by the test below
            failures.append(exc)

    thread = threading.Thread(target=write)
    thread.start()
    loads = 0
    deadline = time.monotonic() + DEADLINE
    try:
        while time.monotonic() < deadline and not failures:
            loaded = reader.load("r")
            text = text_of(loaded.updates)
            assert text == "start" + "x" * (loaded.last_seq - 5), loaded.last_seq
            loads += 1
    finally:
        stop.set()
        thread.join(timeout=DEADLINE * 5)
    assert not thread.is_alive()
    assert not failures, failures
    assert loads > 0
