"""Attacks on the REST and change-feed surface must not hurt a room that minds its own
business.

While a pair of WebSocket clients exchange probes in their own room (one probe in
flight at a time, latency measured as in `harness.isolation`), four attacks run at once
against a server with auth on:

1. compute: callers with a read-only token ask for JSON views of a big room at varied
   seqs, and a writer asks for restores of it, as fast as answers come back;
2. pages: readers page through the change feed and the history of a room of large
   updates from the start, again and again (each route's readers a user of their own);
3. stalled streams: SSE subscribers that never read (tiny receive buffers), and one
   read-only token opening as many streams as the server lets it;
4. expiry: SSE subscribers with tokens that expire after a few seconds, which must get
   an `expired` event and be closed.

Measured: probe latency before (quiet) and during the attacks, and optionally in a
control phase between them: with idle-priority processes spinning on the machine and no
attack (`harness.busy`: what co-located CPU load alone does to the probe, since on a small
machine the attacking clients share the server's cores); the server's RSS, how
late its event loop woke its timer (the `performer_loop_stall_seconds` histogram, quiet and
attacked: the loop's own stalls, which a shared machine's noise does not make up), and
what each attack got back (statuses, bytes, streams accepted, expired events).

The attacks run in a process of their own at a lower CPU priority
(`harness.abuse_attacks`): the probe measures the server, not the attacking client's
work on the same loop or the same cores.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from pycrdt import Doc, Map

from harness.abuse_attacks import SECRET, AbuseSizes, AttackTally
from harness.attacker_link import Attacker
from harness.busy import BusyLoad
from harness.common import Server, pid_of, rss_kib
from harness.isolation import Latencies, probe
from harness.wire import connect, edit
from server.auth import issue_token

__all__ = ["SECRET", "AbuseReport", "AbuseSizes", "run_abuse"]

DEADLINE = 60.0
STALL_BOUNDS = ("0.02", "0.05", "0.1", "0.25")  # seconds, as the server's histogram buckets


@dataclass
class LoopStalls:
    """The server's loop-stall histogram over one phase: how many 50 ms timer ticks it
    saw, how late they were in all, and how many were later than each bound."""

    ticks: int = 0
    late_seconds: float = 0.0
    over: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        over = " ".join(f"over_{float(b) * 1000:g}ms={self.over.get(b, 0)}" for b in STALL_BOUNDS)
        return f"ticks={self.ticks} late_sum={self.late_seconds:.2f}s {over}"


@dataclass
class AbuseReport:
    quiet: Latencies
    attacked: Latencies
    control: Latencies | None = None  # with `control_busy` idle-priority spinners, no attack
    control_busy: int = 0
    rss_mib: list[float] = field(default_factory=list)
    statuses: dict[str, Counter[int]] = field(default_factory=dict)
    page_bytes: list[int] = field(default_factory=list)  # body sizes of feed/history pages
    streams_accepted: int = 0
    subscribers_at_end: int = -1  # the server's performer_feed_subscribers gauge
    expired: int = 0
    expired_seconds: list[float] = field(default_factory=list)
    stalls_quiet: LoopStalls = field(default_factory=LoopStalls)
    stalls_attacked: LoopStalls = field(default_factory=LoopStalls)

    def problems(self, max_ratio: float, max_growth_mib: float, sizes: AbuseSizes) -> list[str]:
        out = []
        if self.attacked.p99_ms > max_ratio * self.quiet.p99_ms:
            floor = ""
            if self.control is not None:
                floor = (f" ({self.control_busy} idle-priority spinners that never touch the "
                         f"server alone: {self.control.p99_ms:.1f} ms)")  # fmt: skip
            out.append(
                f"probe p99 {self.attacked.p99_ms:.1f} ms under attack > {max_ratio:g} x "
                f"quiet {self.quiet.p99_ms:.1f} ms{floor}"
            )
        growth = max(self.rss_mib) - self.rss_mib[0] if self.rss_mib else 0.0
        if growth > max_growth_mib:
            out.append(f"RSS grew {growth:.0f} MiB > {max_growth_mib:g} MiB")
        if self.expired < sizes.expiring:
            out.append(f"only {self.expired}/{sizes.expiring} streams ended at their expiry")
        if self.streams_accepted >= sizes.streams:
            out.append(f"all {self.streams_accepted} streams of one token were accepted")
        if not self.statuses.get("compute", Counter()).get(503):
            out.append("the compute flood was never refused with 503")
        return out

    def lines(self) -> list[str]:
        growth = max(self.rss_mib) - self.rss_mib[0] if self.rss_mib else 0.0
        statuses = " ".join(
            f"{name}={dict(sorted(counts.items()))}" for name, counts in self.statuses.items()
        )
        rss = f"start={self.rss_mib[0] if self.rss_mib else 0:.1f}MiB"
        rss += f" max={max(self.rss_mib, default=0):.1f}MiB growth={growth:.1f}MiB"
        pages = f"n={len(self.page_bytes)} max_bytes={max(self.page_bytes, default=0)}"
        streams = f"one_token_accepted={self.streams_accepted}"
        streams += f" subscribers_at_end={self.subscribers_at_end} expired={self.expired}"
        control = []
        if self.control is not None:
            control = [
                f"RESULT abuse probe control busy={self.control_busy} {self.control.summary()}"
            ]
        return [
            f"RESULT abuse probe quiet {self.quiet.summary()}",
            *control,
            f"RESULT abuse probe attacked {self.attacked.summary()}",
            f"RESULT abuse rss {rss}",
            f"RESULT abuse statuses {statuses}",
            f"RESULT abuse pages {pages}",
            f"RESULT abuse streams {streams}",
            f"RESULT abuse loop quiet {self.stalls_quiet.summary()}",
            f"RESULT abuse loop attacked {self.stalls_attacked.summary()}",
        ]

    def take(self, tally: AttackTally) -> None:
        """What the attacker process got back."""
        self.statuses.update(tally.statuses)
        self.page_bytes = tally.page_bytes
        self.streams_accepted = tally.streams_accepted
        self.expired = tally.expired
        self.expired_seconds = tally.expired_seconds


def _heavy_update(doc: Doc[Any], start: int, count: int) -> bytes:
    updates: list[bytes] = []
    subscription = doc.observe(lambda event: updates.append(bytes(event.update)))
    items = doc.get("items", type=Map)
    with doc.transaction():
        for i in range(start, start + count):
            items[f"k{i}"] = Map({"n": i, "text": "x" * 20})
    doc.unobserve(subscription)
    return updates[0]


async def prepare(server: Server, sizes: AbuseSizes) -> None:
    """The heavy room (views, restores) and the bulk room (pages, streams)."""
    writer = issue_token(SECRET, "*")
    async with aiohttp.ClientSession() as http:
        doc: Doc[Any] = Doc()
        per = max(1, sizes.heavy_maps // sizes.heavy_seqs)
        for seq in range(sizes.heavy_seqs):
            await _post(http, server, "heavy", writer, _heavy_update(doc, seq * per, per))
        author: Doc[Any] = Doc()
        for i in range(sizes.bulk_entries):
            body = edit(author, f"{i}:" + "b" * sizes.bulk_bytes)
            await _post(http, server, "bulk", writer, body)


async def _post(
    http: aiohttp.ClientSession, server: Server, room: str, token: str, body: bytes
) -> None:
    url = f"{server.url}/v1/rooms/{room}/update?token={token}"
    async with http.post(url, data=body) as response:
        assert response.status == 200, await response.text()


async def _rss(server: Server, report: AbuseReport, stop: asyncio.Event) -> None:
    pid = pid_of(server)
    while not stop.is_set():
        report.rss_mib.append(rss_kib(pid) / 1024)
        await asyncio.sleep(0.25)


async def _probes(server: Server, count: int, times: Latencies) -> None:
    token = issue_token(SECRET, "probe")
    async with (
        connect(server.url, "probe", token=token) as writer,
        connect(server.url, "probe", token=token) as reader,
    ):
        await writer.sync()
        await reader.sync()
        for n in range(count):
            await probe(writer, reader, n, times)


async def run_abuse(
    server: Server,
    sizes: AbuseSizes,
    control_busy: int = 0,
    attacker: Attacker | None = None,
) -> AbuseReport:
    """The phases: quiet, then (with `control_busy`) the control, then attacked. The
    attacks come from `attacker` (another machine's: `RemoteAttacker`), else from a
    process spawned here."""
    await prepare(server, sizes)
    report = AbuseReport(Latencies(), Latencies())
    before = await _stall_histogram(server)
    await _probes(server, sizes.probes, report.quiet)
    quiet_end = await _stall_histogram(server)
    report.stalls_quiet = _stalls_between(before, quiet_end)
    if control_busy:
        report.control, report.control_busy = Latencies(), control_busy
        with BusyLoad(control_busy):
            await _probes(server, sizes.probes, report.control)
    stop = asyncio.Event()
    report.rss_mib.append(rss_kib(pid_of(server)) / 1024)
    sampler = asyncio.create_task(_rss(server, report, stop))
    attacker = attacker or Attacker(server.url, sizes)
    try:
        async with asyncio.timeout(DEADLINE * 5):
            await attacker.start()
            attack_start = await _stall_histogram(server)
            await _probes(server, sizes.probes, report.attacked)
            report.stalls_attacked = _stalls_between(attack_start, await _stall_histogram(server))
            await attacker.finish()
            report.subscribers_at_end = await _subscribers(server)
            report.take(await attacker.stop())
    finally:
        stop.set()
        sampler.cancel()
        await asyncio.gather(sampler, return_exceptions=True)
        attacker.kill()
    return report


async def _metrics(server: Server) -> list[str]:
    async with aiohttp.ClientSession() as http, http.get(f"{server.url}/metrics") as response:
        return (await response.text()).splitlines()


async def _subscribers(server: Server) -> int:
    for line in await _metrics(server):
        if line.startswith("performer_feed_subscribers "):
            return int(float(line.split()[1]))
    return -1


async def _stall_histogram(server: Server) -> dict[str, float]:
    """The loop-stall histogram's samples now: `count`, `sum` and each bucket `le`."""
    out: dict[str, float] = {}
    for line in await _metrics(server):
        name, _, value = line.rpartition(" ")
        if name.startswith("performer_loop_stall_seconds_bucket"):
            out[name.split('le="')[1].split('"')[0]] = float(value)
        elif name in ("performer_loop_stall_seconds_count", "performer_loop_stall_seconds_sum"):
            out[name.rsplit("_", 1)[1]] = float(value)
    return out


def _stalls_between(before: dict[str, float], after: dict[str, float]) -> LoopStalls:
    def grew(key: str) -> float:
        return after.get(key, 0.0) - before.get(key, 0.0)

    ticks = int(grew("count"))
    return LoopStalls(
        ticks=ticks,
        late_seconds=grew("sum"),
        over={bound: ticks - int(grew(bound)) for bound in STALL_BOUNDS},
    )
