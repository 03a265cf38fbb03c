"""Delivery by a stored cursor, in-process over a real LMDB store with a scripted consumer:
every entry in order, resumed from the cursor after a restart, a failing consumer retried
then parked, a probe that resumes every parked room, and the CLI's unpark.
(test_hook_delivery.py and test_webhook_outage.py hold the same across kill -9 and with
real receivers.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from pycrdt import Doc

from engine.storage import Append
from engine.storage.records import UpdateRecord
from engine.store import open_store
from harness.wire import edit
from server.delivery import LEASE_SECONDS, Delivery, parked_rooms, unpark
from server.metrics import Metrics
from server.parking import Parked
from server.rooms.fanout import LocalFanout
from server.rooms.store import RoomStore

WAIT = 10.0
NAME = "test-consumer"


class Scripted:
    """Records what reaches it; `failures` makes the next calls raise; `partial` makes a
    call take only the first entry of its batch."""

    name = NAME
    min_interval = 0.0
    retry_seconds = 0.01
    probe_seconds: float | None = None

    def __init__(self, batch_limit: int = 100, max_attempts: int | None = None) -> None:
        self.batch_limit = batch_limit
        self.max_attempts = max_attempts
        self.calls: list[tuple[str, list[int]]] = []
        self.taken: list[tuple[str, int]] = []
        self.failures = 0
        self.partial = False

    async def deliver(self, room: str, records: list[UpdateRecord]) -> int:
        seqs = [record.seq for record in records]
        self.calls.append((room, seqs))
        if self.failures:
            self.failures -= 1
            raise RuntimeError(f"receiver down ({self.failures} more)")
        taken = seqs[:1] if self.partial else seqs
        self.taken += [(room, seq) for seq in taken]
        return taken[-1]

    def delivered(self, room: str) -> list[int]:
        """The seqs of `room` the consumer took, in order."""
        return [seq for r, seq in self.taken if r == room]


class Rig:
    def __init__(self, store: RoomStore) -> None:
        self.store = store
        self.metrics = Metrics()

    async def commit(self, room: str, count: int = 1) -> None:
        await self.store.commit([Append(room, edit(Doc(), f"{room} {i}")) for i in range(count)])

    def delivery(self, consumer: Scripted, **timing: float) -> Delivery:
        return Delivery(consumer, self.store, LocalFanout(), self.metrics, **timing)

    def sample(self, metric: str) -> float | None:
        return self.metrics.registry.get_sample_value(metric, {"consumer": NAME})

    async def cursor(self, room: str) -> bytes | None:
        return await self.store.read(self.store.docs.get_meta, room, f"cursor:{NAME}")


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    store = RoomStore(open_store(data_dir=tmp_path / "data"), Metrics())
    await store.start()
    yield Rig(store)
    await store.close()


async def until(predicate: Callable[[], bool], what: str) -> None:
    async with asyncio.timeout(WAIT):
        while not predicate():
            await asyncio.sleep(0.01)
    assert predicate(), what


async def test_every_entry_reaches_the_consumer_in_order_and_the_cursor_follows(rig: Rig) -> None:
    consumer = Scripted(batch_limit=2)
    delivery = rig.delivery(consumer)
    await delivery.start()
    try:
        await rig.commit("a", 3)
        await rig.commit("b")
        await until(lambda: consumer.delivered("a") == [1, 2, 3], "room a delivered")
        await until(lambda: consumer.delivered("b") == [1], "room b delivered")
        assert [seqs for room, seqs in consumer.calls if room == "a"] == [[1, 2], [3]]
        await until(lambda: rig.sample("performer_delivered_entries_total") == 4, "counted")
        assert await rig.cursor("a") == b"3" and await rig.cursor("b") == b"1"
    finally:
        await delivery.close()
    assert delivery._on_commit not in rig.store.commits.listeners


async def test_a_batch_taken_in_part_is_sent_again_from_where_it_stopped(rig: Rig) -> None:
    consumer = Scripted()
    consumer.partial = True
    delivery = rig.delivery(consumer)
    await delivery.start()
    try:
        await rig.commit("a", 3)
        await until(lambda: len(consumer.calls) >= 3, "three calls")
        assert consumer.calls[:3] == [("a", [1, 2, 3]), ("a", [2, 3]), ("a", [3])]
        assert consumer.delivered("a") == [1, 2, 3]
    finally:
        await delivery.close()


async def test_a_restart_resumes_from_the_stored_cursor(rig: Rig) -> None:
    first = Scripted()
    delivery = rig.delivery(first)
    await delivery.start()
    await rig.commit("a", 2)
    await until(lambda: first.delivered("a") == [1, 2], "first process delivered")
    await until(lambda: rig.sample("performer_delivered_entries_total") == 2, "cursor written")
    await delivery.close()
    await rig.commit("a", 2)  # committed while no delivery runs
    await rig.commit("quiet")
    second = Scripted()
    again = rig.delivery(second)
    await again.start()  # its first scan finds the work left behind
    try:
        await until(lambda: second.delivered("a") == [3, 4], "resumed after the cursor")
        await until(lambda: second.delivered("quiet") == [1], "a room never delivered")
        await asyncio.sleep(0.1)
        assert second.delivered("a") == [3, 4]  # nothing delivered twice
    finally:
        await again.close()


async def test_a_failing_consumer_is_retried_until_it_takes_the_batch(rig: Rig) -> None:
    consumer = Scripted(max_attempts=5)
    consumer.failures = 2
    delivery = rig.delivery(consumer)
    await delivery.start()
    try:
        await rig.commit("a")
        await until(lambda: len(consumer.calls) == 3, "two failures, then success")
        assert consumer.calls == [("a", [1])] * 3
        assert rig.sample("performer_delivery_errors_total") == 2
        await until(lambda: rig.sample("performer_delivered_entries_total") == 1, "delivered")
        assert await rig.store.read(rig.store.docs.get_meta, "a", f"parked:{NAME}") is None
    finally:
        await delivery.close()


async def test_past_its_attempts_a_room_is_parked_and_others_carry_on(rig: Rig) -> None:
    consumer = Scripted(max_attempts=3)
    consumer.failures = 3
    delivery = rig.delivery(consumer, scan_seconds=0.05)
    await delivery.start()
    try:
        await rig.commit("stuck", 2)
        await until(lambda: parked_rooms(rig.store.docs, NAME) != [], "parked")
        parked = parked_rooms(rig.store.docs, NAME)
        assert len(consumer.calls) == 3
        assert parked == [Parked("stuck", 1, 2, 3, "receiver down (0 more)")]
        await until(lambda: rig.sample("performer_parked_rooms") == 1, "parked gauge")
        assert await rig.cursor("stuck") is None  # nothing counted as delivered
        await rig.commit("other")
        await until(lambda: consumer.delivered("other") == [1], "another room delivered")
        await rig.commit("stuck")  # a parked room's new commits wait with it
        await asyncio.sleep(0.2)
        assert [room for room, _ in consumer.calls].count("stuck") == 3
        assert unpark(rig.store.docs, NAME, "stuck") and not unpark(rig.store.docs, NAME, "stuck")
        await until(lambda: consumer.delivered("stuck") == [1, 2, 3], "resumed by unpark")
        await until(lambda: rig.sample("performer_parked_rooms") == 0, "gauge back to 0")
    finally:
        await delivery.close()


async def test_a_probe_that_gets_through_resumes_every_parked_room(rig: Rig) -> None:
    consumer = Scripted(max_attempts=1)
    consumer.failures = 2
    delivery = rig.delivery(consumer, scan_seconds=0.05)
    await delivery.start()
    try:
        await rig.commit("a")
        await rig.commit("b")
        await until(lambda: len(parked_rooms(rig.store.docs, NAME)) == 2, "both parked")
        assert consumer.taken == []
        consumer.probe_seconds = 0.05
        await until(lambda: consumer.delivered("a") == [1], "a resumed")
        await until(lambda: consumer.delivered("b") == [1], "b resumed")
        await until(lambda: parked_rooms(rig.store.docs, NAME) == [], "unparked")
        await until(lambda: rig.sample("performer_parked_rooms") == 0, "gauge back to 0")
    finally:
        await delivery.close()


async def test_a_probe_that_fails_leaves_the_rooms_parked(rig: Rig) -> None:
    consumer = Scripted(max_attempts=1)
    consumer.failures = 1000
    consumer.probe_seconds = 0.05
    delivery = rig.delivery(consumer, scan_seconds=0.05)
    await delivery.start()
    try:
        await rig.commit("a")
        await until(lambda: len(consumer.calls) >= 3, "parked, then probed twice")
        assert [room for room, _ in consumer.calls] == ["a"] * len(consumer.calls)
        assert [p.room for p in parked_rooms(rig.store.docs, NAME)] == ["a"]
        assert consumer.taken == [] and await rig.cursor("a") is None
    finally:
        await delivery.close()


async def test_a_room_parked_just_now_is_first_probed_a_probe_interval_later(rig: Rig) -> None:
    """The receiver has just failed the whole schedule: probing it at the next scan is
    pointless (and an operator's `--retry` would race it)."""
    consumer = Scripted(max_attempts=1)
    consumer.failures = 1000
    consumer.probe_seconds = 1.0
    delivery = rig.delivery(consumer, scan_seconds=0.05)
    await delivery.start()
    try:
        await rig.commit("a")
        await until(lambda: len(parked_rooms(rig.store.docs, NAME)) == 1, "parked")
        parked_at = asyncio.get_running_loop().time()
        await asyncio.sleep(0.5)  # ten scans
        assert len(consumer.calls) == 1, consumer.calls
        await until(lambda: len(consumer.calls) == 2, "probed")
        assert asyncio.get_running_loop().time() - parked_at >= 0.9
    finally:
        await delivery.close()


def test_a_lease_outlives_a_scan() -> None:
    assert LEASE_SECONDS > 2.0  # a live process renews it long before it runs out
