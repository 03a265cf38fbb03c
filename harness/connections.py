"""Many concurrent WebSocket connections on one server, then all of them gone.

Measures the connect rate (a connection counts once its sync finished: the server's
SyncStep1 greeting, then our SyncStep1 answered by a SyncStep2), the server's RSS per open
connection, and its RSS after everyone left and the rooms unloaded. What the server
reports (`/healthz`) is recorded, not assumed: `problems()` names every shortfall.
"""

from __future__ import annotations

import asyncio
import resource
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from engine.protocol import SyncStep1, SyncStep2, decode, encode
from harness.common import Server, health, pid_of, rss_kib

CONNECT_DEADLINE = 30.0


@dataclass
class ConnectionReport:
    connections: int  # asked for
    rooms: int
    seconds: float
    rss_before_kib: int
    rss_open_kib: int
    rss_after_kib: int
    synced: int = 0  # connections whose sync finished
    failures: list[str] = field(default_factory=list)
    server_open: dict[str, Any] = field(default_factory=dict)  # /healthz while all are open
    server_after: dict[str, Any] = field(default_factory=dict)  # /healthz after all left

    @property
    def per_connection_kib(self) -> float:
        return (self.rss_open_kib - self.rss_before_kib) / max(1, self.synced)

    def problems(self, max_kib_per_connection: float | None = None) -> list[str]:
        found = []
        if self.failures:
            found.append(f"{len(self.failures)} connections failed, e.g. {self.failures[0]}")
        if self.synced != self.connections:
            found.append(f"{self.synced} of {self.connections} connections synced")
        if self.server_open.get("connections") != self.synced:
            found.append(f"server counted {self.server_open.get('connections')} open connections")
        after = (self.server_after.get("connections"), self.server_after.get("rooms_loaded"))
        if after != (0, 0):
            found.append(f"after all left: {after[0]} connections, {after[1]} rooms loaded")
        if max_kib_per_connection is not None and self.per_connection_kib > max_kib_per_connection:
            found.append(
                f"RSS per connection {self.per_connection_kib:.1f} KiB "
                f"> {max_kib_per_connection:g} KiB"
            )
        return found

    def line(self) -> str:
        return (
            f"RESULT connections open={self.synced}/{self.connections} rooms={self.rooms} "
            f"connect_rate={self.synced / self.seconds:.0f}/s "
            f"rss_before={self.rss_before_kib / 1024:.1f}MiB "
            f"rss_open={self.rss_open_kib / 1024:.1f}MiB "
            f"rss_per_connection={self.per_connection_kib:.1f}KiB "
            f"rss_after_close={self.rss_after_kib / 1024:.1f}MiB"
        )


def round_growth_problems(reports: list[ConnectionReport], max_growth_mib: float) -> list[str]:
    """A leak grows the RSS left after every round; allocator reuse does not. Compares the
    last round with the first."""
    if len(reports) < 2:
        return []
    growth = (reports[-1].rss_after_kib - reports[0].rss_after_kib) / 1024
    if growth <= max_growth_mib:
        return []
    rounds = len(reports)
    return [f"RSS after all left grew {growth:+.1f} MiB by round {rounds} (> {max_growth_mib:g})"]


def raise_fd_limit(wanted: int) -> None:
    """This process holds one socket per connection: raise the soft limit if needed."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


async def _binary(ws: aiohttp.ClientWebSocketResponse) -> bytes:
    frame = await ws.receive()
    if frame.type != aiohttp.WSMsgType.BINARY:
        raise ConnectionError(f"{frame.type.name} frame (close code {ws.close_code})")
    data: bytes = frame.data
    return data


async def _open_one(
    http: aiohttp.ClientSession, url: str, gate: asyncio.Semaphore
) -> aiohttp.ClientWebSocketResponse:
    async with gate, asyncio.timeout(CONNECT_DEADLINE):
        ws = await http.ws_connect(url, autoclose=False, heartbeat=None)
        try:
            greeting = decode(await _binary(ws))
            if not isinstance(greeting, SyncStep1):
                raise ConnectionError(f"greeted with {type(greeting).__name__}")
            await ws.send_bytes(encode(SyncStep1(b"\x00")))
            while not isinstance(decode(await _binary(ws)), SyncStep2):
                pass
        except BaseException:
            await ws.close()
            raise
        return ws


async def settle_health(url: str, **expected: int) -> dict[str, Any]:
    """Wait (with a deadline) until /healthz shows `expected`; the last answer either way."""
    now = await health(url)
    try:
        async with asyncio.timeout(CONNECT_DEADLINE):
            while not all(now[k] == v for k, v in expected.items()):
                await asyncio.sleep(0.05)
                now = await health(url)
    except TimeoutError:
        pass
    return now


async def hold_connections(
    server: Server, count: int, rooms: int, concurrency: int = 200
) -> ConnectionReport:
    """Open `count` connections over `rooms` rooms, measure, close them all."""
    raise_fd_limit(count + 1024)
    pid = pid_of(server)
    base = server.url.replace("http://", "ws://") + "/rooms/"
    before = rss_kib(pid)
    gate = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        started = time.perf_counter()
        opened = await asyncio.gather(
            *(_open_one(http, f"{base}load-{i % rooms}", gate) for i in range(count)),
            return_exceptions=True,
        )
        seconds = time.perf_counter() - started
        sockets = [ws for ws in opened if isinstance(ws, aiohttp.ClientWebSocketResponse)]
        failures = [repr(e) for e in opened if isinstance(e, BaseException)]
        server_open = await settle_health(server.url, connections=len(sockets))
        open_rss = rss_kib(pid)
        await asyncio.gather(*(ws.close() for ws in sockets))
    server_after = await settle_health(server.url, connections=0, rooms_loaded=0)
    return ConnectionReport(
        count,
        rooms,
        seconds,
        before,
        open_rss,
        rss_kib(pid),
        synced=len(sockets),
        failures=failures,
        server_open=server_open,
        server_after=server_after,
    )
