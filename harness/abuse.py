"""Attacks on the REST and change-feed surface must not hurt a room that minds its own
business.

While a pair of WebSocket clients exchange probes in their own room (one probe in
flight at a time, latency measured as in `harness.isolation`), four attacks run at once
against a server with auth on:

1. compute: callers with a read-only token ask for JSON views of a big room at varied
   seqs, and a writer asks for restores of it, as fast as answers come back;
2. pages: readers page through the change feed and the history of a room of large
   updates from the start, again and again;
3. stalled streams: SSE subscribers that never read (tiny receive buffers), and one
   read-only token opening as many streams as the server lets it;
4. expiry: SSE subscribers with tokens that expire after a few seconds, which must get
   an `expired` event and be closed.

Measured: probe latency before (quiet) and during the attacks, the server's RSS, and
what each attack got back (statuses, bytes, streams accepted, expired events).
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from pycrdt import Doc, Map

from harness.common import Server, pid_of, rss_kib
from harness.isolation import Latencies, probe
from harness.wire import connect, edit
from server.auth import issue_token

SECRET = "abuse-harness-secret-of-at-least-32-bytes"
DEADLINE = 60.0


@dataclass
class AbuseSizes:
    probes: int = 200
    heavy_maps: int = 3000  # entries of the room whose views and restores are asked for
    heavy_seqs: int = 10  # updates it is written in (views ask for each seq)
    compute_callers: int = 20
    bulk_entries: int = 40  # the paged room's updates ...
    bulk_bytes: int = 1_000_000  # ... of this size
    page_readers: int = 4
    stalled: int = 20
    streams: int = 300  # one token's attempts
    expiring: int = 5
    ttl: int = 3


@dataclass
class AbuseReport:
    quiet: Latencies
    attacked: Latencies
    rss_mib: list[float] = field(default_factory=list)
    statuses: dict[str, Counter[int]] = field(default_factory=dict)
    page_bytes: list[int] = field(default_factory=list)  # body sizes of feed/history pages
    streams_accepted: int = 0
    subscribers_at_end: int = -1  # the server's performer_feed_subscribers gauge
    expired: int = 0
    expired_seconds: list[float] = field(default_factory=list)

    def problems(self, max_ratio: float, max_growth_mib: float, sizes: AbuseSizes) -> list[str]:
        out = []
        if self.attacked.p99_ms > max_ratio * self.quiet.p99_ms:
            out.append(
                f"probe p99 {self.attacked.p99_ms:.1f} ms under attack > {max_ratio:g} x "
                f"quiet {self.quiet.p99_ms:.1f} ms"
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
        return [
            f"RESULT abuse probe quiet {self.quiet.summary()}",
            f"RESULT abuse probe attacked {self.attacked.summary()}",
            f"RESULT abuse rss {rss}",
            f"RESULT abuse statuses {statuses}",
            f"RESULT abuse pages {pages}",
            f"RESULT abuse streams {streams}",
        ]


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


async def _compute(
    server: Server, sizes: AbuseSizes, statuses: Counter[int], stop: asyncio.Event, index: int
) -> None:
    reader = issue_token(SECRET, "heavy", read_only=True)  # one read-only token for all
    writer = issue_token(SECRET, "heavy", user=f"restorer-{index % 3}")
    async with aiohttp.ClientSession() as http:
        while not stop.is_set():
            seq = random.randint(1, sizes.heavy_seqs)
            if index % 5 == 4:
                request = http.post(f"{server.url}/v1/rooms/heavy/restore?token={writer}",
                                    json={"seq": seq})  # fmt: skip
            else:
                request = http.get(f"{server.url}/v1/rooms/heavy/json?at={seq}&token={reader}")
            async with request as response:
                await response.read()
                statuses[response.status] += 1
            if response.status == 503:
                await asyncio.sleep(0.05)  # a real client would wait Retry-After


async def _pages(
    server: Server, statuses: Counter[int], sizes_seen: list[int], stop: asyncio.Event, route: str
) -> None:
    reader = issue_token(SECRET, "bulk", read_only=True)
    async with aiohttp.ClientSession() as http:
        while not stop.is_set():
            after = 0
            while not stop.is_set():
                url = f"{server.url}/v1/rooms/bulk/{route}?after={after}&limit=1000&token={reader}"
                async with http.get(url) as response:
                    body = await response.read()
                    statuses[response.status] += 1
                    sizes_seen.append(len(body))
                if response.status == 503:  # past the caller's pages: wait as told
                    await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
                    break
                if response.status != 200:
                    break
                page = _page_head(body)
                if not page.get("more"):
                    break
                after = page["next_after"]


def _page_head(body: bytes) -> dict[str, Any]:
    """A page's fields without decoding its entries (megabytes of base64 the attacker
    does not need; parsing them would only take CPU from the server on the same host)."""
    cut = body.find(b', "entries": [')
    if cut < 0:
        return dict(json.loads(body))
    return dict(json.loads(body[:cut] + b"}"))


def _stalled_stream(server: Server, token: str) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    sock.sendall(
        f"GET /v1/rooms/bulk/changes?after=0&token={token} HTTP/1.1\r\nHost: x\r\n"
        "Accept: text/event-stream\r\n\r\n".encode()
    )
    return sock


async def _streams(server: Server, sizes: AbuseSizes, report: AbuseReport) -> list[Any]:
    """One token's streams (kept open, read by nobody) and stalled raw sockets."""
    token = issue_token(SECRET, "bulk", read_only=True, user="hoarder")
    held: list[Any] = []
    http = aiohttp.ClientSession()
    held.append(http)
    statuses = report.statuses.setdefault("streams", Counter())
    end = {"Accept": "text/event-stream", "Last-Event-ID": str(sizes.bulk_entries)}
    for _ in range(sizes.streams):  # idle streams from the end of the log, held open
        response = await http.get(f"{server.url}/v1/rooms/bulk/changes?token={token}",
                                  headers=end)  # fmt: skip
        statuses[response.status] += 1
        if response.status == 200:
            report.streams_accepted += 1
            held.append(response)
        else:
            response.release()
    stalled_token = issue_token(SECRET, "bulk", read_only=True, user="staller")
    for _ in range(sizes.stalled):
        held.append(await asyncio.to_thread(_stalled_stream, server, stalled_token))
    return held


async def _expiring(server: Server, sizes: AbuseSizes, report: AbuseReport, index: int) -> None:
    token = issue_token(SECRET, "heavy", read_only=True, user=f"brief-{index}", ttl=sizes.ttl)
    opened = time.time()
    timeout = aiohttp.ClientTimeout(total=sizes.ttl + 30)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        url = f"{server.url}/v1/rooms/heavy/changes?token={token}"
        async with http.get(url, headers={"Accept": "text/event-stream"}) as response:
            async for line in response.content:
                if line.startswith(b"event: expired"):
                    report.expired += 1
                    report.expired_seconds.append(time.time() - opened)


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


async def run_abuse(server: Server, sizes: AbuseSizes) -> AbuseReport:
    await prepare(server, sizes)
    report = AbuseReport(Latencies(), Latencies())
    await _probes(server, sizes.probes, report.quiet)
    stop = asyncio.Event()
    report.rss_mib.append(rss_kib(pid_of(server)) / 1024)
    compute = report.statuses.setdefault("compute", Counter())
    pages = report.statuses.setdefault("pages", Counter())
    attacks = [asyncio.create_task(_rss(server, report, stop))]
    attacks += [asyncio.create_task(_compute(server, sizes, compute, stop, i))
                for i in range(sizes.compute_callers)]  # fmt: skip
    attacks += [asyncio.create_task(_pages(server, pages, report.page_bytes, stop, route))
                for i in range(sizes.page_readers) for route in ("changes", "history")]  # fmt: skip
    expiring = [
        asyncio.create_task(_expiring(server, sizes, report, i)) for i in range(sizes.expiring)
    ]
    held = await _streams(server, sizes, report)
    try:
        async with asyncio.timeout(DEADLINE * 5):
            await _probes(server, sizes.probes, report.attacked)
            await asyncio.gather(*expiring)
        report.subscribers_at_end = await _subscribers(server)
    finally:
        stop.set()
        for task in attacks:
            task.cancel()
        await asyncio.gather(*attacks, return_exceptions=True)
        await _release(held)
    return report


async def _subscribers(server: Server) -> int:
    async with aiohttp.ClientSession() as http, http.get(f"{server.url}/metrics") as response:
        for line in (await response.text()).splitlines():
            if line.startswith("performer_feed_subscribers "):
                return int(float(line.split()[1]))
    return -1


async def _release(held: list[Any]) -> None:
    for item in held:
        if isinstance(item, socket.socket):
            item.close()
        elif isinstance(item, aiohttp.ClientResponse):
            item.close()
    for item in held:
        if isinstance(item, aiohttp.ClientSession):
            await item.close()
