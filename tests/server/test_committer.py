"""The writer thread's group commit: rounds, and the linger when rooms commit together."""

from __future__ import annotations

import asyncio
import sys
import threading

import pytest

from engine.errors import StorageError
from engine.storage import Append
from server.metrics import Metrics
from server.rooms.committer import GIL_SWITCH_SECONDS, WriterThread

LINGER = 0.05  # long enough that thread scheduling cannot blur the rounds


class Disk:
    """A write function that records each round's rooms and can hold the first one."""

    def __init__(self) -> None:
        self.rounds: list[list[str]] = []
        self.hold = threading.Event()
        self.hold.set()
        self.entered = threading.Event()
        self.next_seq = 0

    def write(self, appends: list[Append]) -> list[int]:
        self.entered.set()
        self.hold.wait(10)
        self.rounds.append([append.room for append in appends])
        self.next_seq += len(appends)
        return list(range(self.next_seq - len(appends) + 1, self.next_seq + 1))


async def _two_rounds(
    rooms_first: list[str], linger: float, *, one_job: bool = False
) -> list[list[str]]:
    """A round of `rooms_first` committed together (as one commit of several updates with
    `one_job`), then two lone commits 10 ms apart."""
    disk = Disk()
    writer = WriterThread(disk.write, Metrics(), linger=linger)
    writer.start()
    try:
        disk.hold.clear()
        blocker = asyncio.ensure_future(writer.commit([Append("blocker", b"x")]))
        assert await asyncio.to_thread(disk.entered.wait, 10)  # the writer is at the disk
        if one_job:
            appends = [Append(r, b"x") for r in rooms_first]
            together = [asyncio.ensure_future(writer.commit(appends))]
        else:
            together = [
                asyncio.ensure_future(writer.commit([Append(r, b"x")])) for r in rooms_first
            ]
        await asyncio.sleep(0.01)
        disk.hold.set()
        async with asyncio.timeout(10):
            await asyncio.gather(blocker, *together)
        first = asyncio.ensure_future(writer.commit([Append("c", b"x")]))
        await asyncio.sleep(0.01)
        second = asyncio.ensure_future(writer.commit([Append("d", b"x")]))
        async with asyncio.timeout(10):
            await asyncio.gather(first, second)
        return disk.rounds
    finally:
        await writer.close()


async def test_commits_queued_during_a_write_share_the_next_one() -> None:
    rounds = await _two_rounds(["a", "b"], linger=0)
    assert ["a", "b"] in rounds


async def test_after_a_round_of_several_rooms_the_next_round_waits_for_more() -> None:
    rounds = await _two_rounds(["a", "b"], linger=LINGER)
    assert rounds[-1] == ["c", "d"]  # 10 ms apart, yet one transaction


async def test_a_lone_room_never_waits() -> None:
    rounds = await _two_rounds(["a"], linger=LINGER)
    assert rounds[-2:] == [["c"], ["d"]]


async def test_without_linger_commits_apart_in_time_are_apart() -> None:
    rounds = await _two_rounds(["a", "b"], linger=0)
    assert rounds[-2:] == [["c"], ["d"]]


async def test_one_busy_room_never_waits_even_when_its_commit_carried_several_updates() -> None:
    """The linger counts commits, not updates: a room's actor sends its queued updates
    as one commit, and that lone commit is no sign of rooms committing together."""
    rounds = await _two_rounds(["a", "a"], linger=LINGER, one_job=True)
    assert ["a", "a"] in rounds
    assert rounds[-2:] == [["c"], ["d"]]


class FailingDisk(Disk):
    """Fails the writes it is told to, with the error it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.errors: list[Exception] = []

    def write(self, appends: list[Append]) -> list[int]:
        if self.errors:
            self.entered.set()
            self.hold.wait(10)
            raise self.errors.pop(0)
        return super().write(appends)


async def test_each_commit_of_a_shared_round_gets_its_own_seqs_in_order() -> None:
    disk = Disk()
    writer = WriterThread(disk.write, Metrics(), linger=0)
    writer.start()
    try:
        disk.hold.clear()
        blocker = asyncio.ensure_future(writer.commit([Append("blocker", b"x")]))
        assert await asyncio.to_thread(disk.entered.wait, 10)
        sizes = [1, 3, 2]
        jobs = [asyncio.ensure_future(writer.commit([Append("r", b"x")] * n)) for n in sizes]
        await asyncio.sleep(0.01)
        disk.hold.set()
        async with asyncio.timeout(10):
            assert await blocker == [1]
            assert await asyncio.gather(*jobs) == [[2], [3, 4, 5], [6, 7]]
        assert len(disk.rounds) == 2  # the three commits shared one write
    finally:
        await writer.close()


async def test_a_failed_write_fails_its_whole_round_and_the_writer_carries_on() -> None:
    disk = FailingDisk()
    writer = WriterThread(disk.write, Metrics(), linger=0)
    writer.start()
    try:
        already = StorageError("the store's own error")
        disk.errors = [RuntimeError("disk full"), already]
        disk.hold.clear()
        first = asyncio.ensure_future(writer.commit([Append("a", b"x")]))
        assert await asyncio.to_thread(disk.entered.wait, 10)
        disk.hold.set()
        with pytest.raises(StorageError, match="disk full"):
            await asyncio.wait_for(first, 10)
        disk.hold.clear()
        disk.entered.clear()
        second = asyncio.ensure_future(writer.commit([Append("b", b"x")]))
        assert await asyncio.to_thread(disk.entered.wait, 10)
        queued = asyncio.ensure_future(writer.commit([Append("c", b"x")]))
        await asyncio.sleep(0.01)
        disk.hold.set()
        with pytest.raises(StorageError) as raised:
            await asyncio.wait_for(second, 10)
        assert raised.value is already  # a StorageError reaches the caller as it was raised
        assert await asyncio.wait_for(queued, 10) == [1]  # the next round is written
    finally:
        await writer.close()


async def test_calls_run_in_order_with_commits_and_hand_back_results_and_errors() -> None:
    disk = Disk()
    writer = WriterThread(disk.write, Metrics())
    writer.start()
    try:
        commit = asyncio.ensure_future(writer.commit([Append("a", b"x")]))
        await asyncio.sleep(0)  # the commit is queued first
        rounds_seen = await writer.call(lambda: list(disk.rounds))
        assert rounds_seen == [["a"]] and await commit == [1]
        assert await writer.call(lambda a, b: a + b, 2, 3) == 5

        def broken() -> None:
            raise ValueError("bad metadata")

        with pytest.raises(ValueError, match="bad metadata"):
            await writer.call(broken)
        assert await writer.call(lambda: "still running") == "still running"
    finally:
        await writer.close()


async def test_close_finishes_what_is_queued_then_refuses_more() -> None:
    disk = Disk()
    writer = WriterThread(disk.write, Metrics())
    writer.start()
    disk.hold.clear()
    first = asyncio.ensure_future(writer.commit([Append("a", b"x")]))
    assert await asyncio.to_thread(disk.entered.wait, 10)
    queued = asyncio.ensure_future(writer.commit([Append("b", b"x")]))
    await asyncio.sleep(0.01)
    closing = asyncio.ensure_future(writer.close())
    await asyncio.sleep(0.01)
    with pytest.raises(StorageError, match="closing"):
        await writer.commit([Append("c", b"x")])
    disk.hold.set()
    async with asyncio.timeout(10):
        assert (await first, await queued) == ([1], [2])
        await closing
        await writer.close()  # a second close is a no-op
    with pytest.raises(StorageError, match="closed"):
        await writer.call(lambda: None)
    assert disk.rounds == [["a"], ["b"]]


async def test_a_waiter_that_gave_up_does_not_stop_the_rest_of_its_round_being_answered() -> None:
    disk = Disk()
    writer = WriterThread(disk.write, Metrics(), linger=0)
    writer.start()
    try:
        disk.hold.clear()
        blocker = asyncio.ensure_future(writer.commit([Append("blocker", b"x")]))
        assert await asyncio.to_thread(disk.entered.wait, 10)
        gave_up = asyncio.ensure_future(writer.commit([Append("a", b"x")]))
        waiting = asyncio.ensure_future(writer.commit([Append("b", b"x")]))
        await asyncio.sleep(0.01)
        gave_up.cancel()  # e.g. its client disconnected while the round was on disk
        disk.hold.set()
        async with asyncio.timeout(10):
            assert await blocker == [1]
            assert await waiting == [3]  # the round was written for both; b still hears
        assert disk.rounds == [["blocker"], ["a", "b"]]
    finally:
        await writer.close()


async def test_a_writer_that_never_started_refuses_work_and_closes_quietly() -> None:
    writer = WriterThread(Disk().write, Metrics())
    with pytest.raises(StorageError, match="not running"):
        await writer.commit([Append("a", b"x")])
    with pytest.raises(StorageError, match="not running"):
        await writer.call(lambda: None)
    await writer.close()  # nothing to stop


async def test_starting_the_writer_shortens_a_long_gil_switch_interval() -> None:
    before = sys.getswitchinterval()
    sys.setswitchinterval(0.005)
    writer = WriterThread(Disk().write, Metrics())
    try:
        writer.start()
        assert sys.getswitchinterval() == pytest.approx(GIL_SWITCH_SECONDS)
        assert await writer.commit([Append("a", b"x")]) == [1]
    finally:
        await writer.close()
        sys.setswitchinterval(before)
