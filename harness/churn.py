"""Connect/disconnect cycles on one room that stays loaded (a resident observer keeps
it open), so anything a departed connection leaves behind would pile up.

Each cycle connects, syncs, announces a presence state, sometimes sends an edit (and waits
until it is saved), and leaves. Checked at the end: no connection is left, the only
presence state is the observer's, every edit reached the observer, and the server's RSS
is back near its level after the warm-up cycles. Long form::

    python -m benchmarks.reliability.churn --cycles 10000
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field

import aiohttp
from pycrdt import Doc, Text

from engine.protocol import (
    AwarenessEntry,
    AwarenessUpdate,
    QueryAwareness,
    Saved,
    SyncStep1,
    SyncStep2,
    Update,
    decode,
    decode_awareness,
    encode,
    encode_awareness,
)
from harness.common import Server, durable_doc, health, pid_of, rss_kib
from harness.wire import WireClient, connect, edit

DEADLINE = 30.0
EDIT_EVERY = 10
OBSERVER_ID = 1
ROOM = "churn"


@dataclass
class ChurnReport:
    cycles: int
    edits: int
    seconds: float
    rss_warm_kib: int
    rss_end_kib: int
    rss_peak_kib: int
    edits_seen: int = 0  # edit tokens the resident observer received
    edits_stored: int = 0  # edit tokens in the stored room (REST)
    leftovers: list[str] = field(default_factory=list)

    @property
    def growth_mib(self) -> float:
        return (self.rss_end_kib - self.rss_warm_kib) / 1024

    def problems(self, max_growth_mib: float | None = None) -> list[str]:
        """Leftovers, plus RSS growth after warm-up past `max_growth_mib`."""
        found = list(self.leftovers)
        if max_growth_mib is not None and self.growth_mib > max_growth_mib:
            found.append(
                f"RSS grew {self.growth_mib:+.1f} MiB after warm-up (> {max_growth_mib:g} MiB)"
            )
        return found

    def line(self) -> str:
        return (
            f"RESULT churn cycles={self.cycles} edits={self.edits} "
            f"rate={self.cycles / self.seconds:.0f}/s "
            f"rss_after_warmup={self.rss_warm_kib / 1024:.1f}MiB "
            f"rss_peak={self.rss_peak_kib / 1024:.1f}MiB "
            f"rss_end={self.rss_end_kib / 1024:.1f}MiB "
            f"growth={self.growth_mib:+.1f}MiB "
            f"edits_seen={self.edits_seen}/{self.edits} "
            f"edits_stored={self.edits_stored}/{self.edits} "
            f"leftovers={len(self.leftovers)}"
        )


async def _cycle(http: aiohttp.ClientSession, url: str, n: int) -> None:
    ws = await http.ws_connect(url, autoclose=False, heartbeat=None)
    try:
        async with asyncio.timeout(DEADLINE):
            await ws.send_bytes(encode(SyncStep1(b"\x00")))
            presence = AwarenessEntry(1000 + n, 1, f'{{"user":{{"name":"c{n}"}}}}')
            await ws.send_bytes(encode(AwarenessUpdate(encode_awareness([presence]))))
            wanted: type = SyncStep2
            if n % EDIT_EVERY == 0:
                await ws.send_bytes(encode(Update(edit(Doc(), f"<{n}>"))))
                wanted = Saved
            while True:
                frame = await ws.receive()
                assert frame.type == aiohttp.WSMsgType.BINARY, (frame.type, ws.close_code)
                if isinstance(decode(frame.data), wanted):
                    break
    finally:
        await ws.close()


async def _observe(observer: WireClient, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            message = await observer.recv(timeout=0.5)
        except TimeoutError:
            continue
        assert message is not None, f"observer closed with {observer.close_code}"


async def _relayed(observer: WireClient, tokens: set[str]) -> int:
    """How many of `tokens` the observer got relayed (no resync: what the server pushed),
    waiting for stragglers up to the deadline."""

    def seen() -> int:
        text = observer.text()
        return sum(token in text for token in tokens)

    try:
        async with asyncio.timeout(DEADLINE):
            while seen() < len(tokens):
                if await observer.recv(DEADLINE) is None:
                    break
    except TimeoutError:
        pass
    return seen()


async def _presence_ids(observer: WireClient) -> set[int]:
    """The states the server holds. The answer to a query lists live states only, so a
    message with a removal in it is a late relay of a departure, not the answer."""
    await observer.send(QueryAwareness())
    while True:
        message = await observer.wait_for(AwarenessUpdate)
        assert isinstance(message, AwarenessUpdate)
        entries = decode_awareness(message.payload)
        if not any(e.removed for e in entries):
            return {e.client_id for e in entries}


async def churn(server: Server, cycles: int, parallel: int = 8, seed: int = 0) -> ChurnReport:
    pid = pid_of(server)
    url = server.url.replace("http://", "ws://") + f"/rooms/{ROOM}?ack=1"
    warmup = max(parallel, min(500, cycles // 10))
    order = list(range(cycles))
    random.Random(seed).shuffle(order)
    rss_warm = peak = 0
    async with connect(server.url, ROOM) as observer:
        await observer.sync()
        mine = AwarenessEntry(OBSERVER_ID, 1, '{"user":{"name":"observer"}}')
        await observer.send(AwarenessUpdate(encode_awareness([mine])))
        stop = asyncio.Event()
        watching = asyncio.create_task(_observe(observer, stop))
        started = time.perf_counter()
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            for start in range(0, cycles, parallel):
                await asyncio.gather(
                    *(_cycle(http, url, n) for n in order[start : start + parallel])
                )
                if start < warmup <= start + parallel:
                    rss_warm = rss_kib(pid)
                if start % (parallel * 50) == 0:
                    peak = max(peak, rss_kib(pid))
        seconds = time.perf_counter() - started
        stop.set()
        await asyncio.wait_for(watching, DEADLINE)
        report = ChurnReport(cycles, len(range(0, cycles, EDIT_EVERY)), seconds, rss_warm, 0, 0)
        await _check(server, observer, report)
    report.rss_end_kib = rss_kib(pid)
    report.rss_peak_kib = max(peak, report.rss_end_kib)
    return report


async def _check(server: Server, observer: WireClient, report: ChurnReport) -> None:
    ids = await _presence_ids(observer)
    if ids != {OBSERVER_ID}:
        report.leftovers.append(f"presence states left behind: {sorted(ids)[:10]}...")
    expected = {f"<{n}>" for n in range(0, report.cycles, EDIT_EVERY)}
    report.edits_seen = await _relayed(observer, expected)
    if report.edits_seen != len(expected):
        report.leftovers.append(
            f"{len(expected) - report.edits_seen} edits never reached the observer"
        )
    stored = str((await durable_doc(server.url, ROOM)).get("t", type=Text))
    report.edits_stored = sum(token in stored for token in expected)
    if report.edits_stored != len(expected):
        report.leftovers.append(f"{len(expected) - report.edits_stored} edits are not stored")
    connections = (await health(server.url))["connections"]
    if connections != 1:
        report.leftovers.append(f"{connections} connections open, expected the observer's")
