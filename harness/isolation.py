"""One bad client must not hurt the others.

* Slow consumer: a client in the room stops reading while a writer sends updates; the
  other reader in that room still gets every update (the server cuts the sleeper off
  with 4408 once its send buffer passes `--send-buffer-bytes`, instead of queueing).
* Flooder: one client sends updates as fast as it can into its room; the server
  throttles it to `--rate` (delays, never drops: all its updates are saved), and a pair
  of clients in another room keeps exchanging probes.

Probe latency is measured with one probe in flight at a time, with and without the bad
client. Long form::

    python -m benchmarks.reliability.isolation --updates 2000
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from pycrdt import Doc, Map

from engine.protocol import Saved, Update
from harness.common import Server
from harness.wire import WireClient, connect, edit

DEADLINE = 60.0


@dataclass
class Latencies:
    samples: list[float] = field(default_factory=list)

    @property
    def p99_ms(self) -> float:
        if not self.samples:
            return float("nan")
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.samples) * 1000 if self.samples else float("nan")

    def summary(self) -> str:
        if not self.samples:
            return "n=0"
        return f"n={len(self.samples)} p50={self.p50_ms:.2f}ms p99={self.p99_ms:.2f}ms"


@dataclass
class FloodResult:
    """What one flood phase measured: probe latencies in the calm room, and the flooder's
    own progress as the server acknowledged it."""

    times: Latencies
    sent: int = 0
    saved: int = 0
    seconds: float = 0.0  # first send to the last "saved" acknowledgement
    acks: list[tuple[float, int]] = field(default_factory=list)  # (seconds, saved count)

    @property
    def saved_per_second(self) -> float:
        return self.saved / self.seconds if self.seconds else float("nan")


async def probe(
    writer: WireClient, reader: WireClient, n: int, times: Latencies, padding: int = 0
) -> None:
    """Set probe number `n` (with `padding` bytes alongside) and wait until the reader
    has it. A map entry, not appended text, so checking costs the same at any length."""
    started = time.perf_counter()
    updates: list[bytes] = []
    subscription = writer.doc.observe(lambda event: updates.append(bytes(event.update)))
    with writer.doc.transaction():
        probes = writer.doc.get("probe", type=Map)
        probes["n"] = n
        if padding:
            probes["pad"] = "z" * padding
    writer.doc.unobserve(subscription)
    await writer.send(Update(updates[0]))
    async with asyncio.timeout(DEADLINE):
        while reader.doc.get("probe", type=Map).get("n") != n:
            if await reader.recv(DEADLINE) is None:
                raise AssertionError(f"reader closed with {reader.close_code}")
    times.samples.append(time.perf_counter() - started)


async def slow_consumer(
    server: Server, updates: int, size: int, sleeper: bool, close_deadline: float = 10.0
) -> tuple[Latencies, int | None]:
    """Writer -> fast reader in a room where (optionally) a third client never reads.
    Returns the fast reader's latencies and the sleeper's close code (None: not closed
    within `close_deadline` seconds of the last probe)."""
    room = f"slow-{int(sleeper)}"
    times = Latencies()
    async with connect(server.url, room) as writer, connect(server.url, room) as reader:
        await writer.sync()
        await reader.sync()
        async with connect(server.url, room) as idle:
            await idle.sync()
            if not sleeper:
                await idle.ws.close()
            for i in range(updates):
                await probe(writer, reader, i, times, padding=size)
            code = None
            if sleeper:
                code = await close_code_within(idle, close_deadline)
    return times, code


async def close_code_within(client: WireClient, deadline: float) -> int | None:
    """Read what the client was sent until the server closes it: its close code, or None
    if it is still open at the deadline (or the socket broke without a close frame)."""
    try:
        return await client.wait_closed(deadline)
    except (aiohttp.ClientError, ConnectionError, TimeoutError):
        return None


async def flood(
    server: Server, flood_updates: int, probes: int, phase: str = "flood"
) -> FloodResult:
    """A flooder in one room, probes in another. Every one of the flooder's updates must
    be saved (throttling delays, never drops); the result says how fast they were."""
    result = FloodResult(Latencies())
    async with (
        connect(server.url, f"{phase}-flooded", ack=True) as flooder,
        connect(server.url, f"{phase}-calm") as writer,
        connect(server.url, f"{phase}-calm") as reader,
    ):
        for client in (flooder, writer, reader):
            await client.sync()
        author: Doc[Any] = Doc()
        frames = [Update(edit(author, f"{i};")) for i in range(flood_updates)]
        started = time.perf_counter()
        flooding = asyncio.create_task(_send_all(flooder, frames, result))
        acks = asyncio.create_task(_read_acks(flooder, flood_updates, started, result))
        for i in range(probes):
            await probe(writer, reader, i, result.times)
        await asyncio.wait_for(flooding, DEADLINE)
        await asyncio.wait_for(acks, DEADLINE * 2)
    return result


async def _send_all(client: WireClient, frames: list[Update], result: FloodResult) -> None:
    for frame in frames:
        await client.send(frame)
        result.sent += 1


async def _read_acks(client: WireClient, wanted: int, started: float, result: FloodResult) -> None:
    """Record every "saved" acknowledgement until `wanted` updates are saved."""
    while result.saved < wanted:
        message = await client.recv(DEADLINE)
        if message is None:
            raise AssertionError(f"flooder closed with {client.close_code}")
        if isinstance(message, Saved):
            result.saved = max(result.saved, message.count)
            result.seconds = time.perf_counter() - started
            result.acks.append((result.seconds, message.count))


@dataclass
class IsolationReport:
    rate: float
    flood_updates: int
    alone: Latencies
    beside: Latencies
    sleeper_close: int | None
    calm: Latencies
    flooded: FloodResult

    def problems(self, max_slow_p99_ms: float, max_flood_p99_ms: float) -> list[str]:
        found = []
        if self.sleeper_close != 4408:
            found.append(f"the client that reads nothing was not cut off ({self.sleeper_close})")
        if self.flooded.saved != self.flood_updates:
            found.append(f"flooder: {self.flooded.saved}/{self.flood_updates} updates saved")
        # A token bucket (the server's burst is twice its rate) cannot have let more than
        # burst + rate x elapsed through, at any acknowledgement.
        burst = 2 * self.rate
        early = [(t, n) for t, n in self.flooded.acks if n > burst + self.rate * t]
        if early:
            t, n = early[0]
            found.append(f"flooder not throttled: {n} updates saved after {t:.2f} s")
        if not self.beside.p99_ms <= max_slow_p99_ms:
            found.append(
                f"reader p99 beside a slow consumer {self.beside.p99_ms:.1f} ms "
                f"> {max_slow_p99_ms:g} ms"
            )
        if not self.flooded.times.p99_ms <= max_flood_p99_ms:
            found.append(
                f"other room's p99 during the flood {self.flooded.times.p99_ms:.1f} ms "
                f"> {max_flood_p99_ms:g} ms"
            )
        return found

    def lines(self) -> list[str]:
        sleeper = f"sleeper_close={self.sleeper_close}"
        flooder = (
            f"flooder_saved={self.flooded.saved}/{self.flood_updates} "
            f"flooder_rate={self.flooded.saved_per_second:.0f}/s rate={self.rate:.0f}/s"
        )
        return [
            f"RESULT isolation slow_consumer baseline {self.alone.summary()}",
            f"RESULT isolation slow_consumer with_sleeper {self.beside.summary()} {sleeper}",
            f"RESULT isolation flood baseline {self.calm.summary()}",
            f"RESULT isolation flood with_flooder {self.flooded.times.summary()} {flooder}",
        ]
