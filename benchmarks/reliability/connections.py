"""Many concurrent WebSocket connections on one server, then all of them gone.

Reports the connect rate (each connection counts once the server's SyncStep1 greeting
arrived), the server's RSS per open connection, and its RSS after everyone left and the
rooms unloaded. Long form::

    .venv/bin/python -m benchmarks.reliability.connections --connections 10000
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from benchmarks.reliability.common import Server, health, pid_of, rss_kib
from engine.protocol import SyncStep1, decode

CONNECT_DEADLINE = 30.0


@dataclass
class ConnectionReport:
    connections: int
    rooms: int
    seconds: float
    rss_before_kib: int
    rss_open_kib: int
    rss_after_kib: int

    @property
    def per_connection_kib(self) -> float:
        return (self.rss_open_kib - self.rss_before_kib) / max(1, self.connections)

    def line(self) -> str:
        return (
            f"RESULT connections open={self.connections} rooms={self.rooms} "
            f"connect_rate={self.connections / self.seconds:.0f}/s "
            f"rss_before={self.rss_before_kib / 1024:.1f}MiB "
            f"rss_open={self.rss_open_kib / 1024:.1f}MiB "
            f"rss_per_connection={self.per_connection_kib:.1f}KiB "
            f"rss_after_close={self.rss_after_kib / 1024:.1f}MiB"
        )


def raise_fd_limit(wanted: int) -> None:
    """This process holds one socket per connection: raise the soft limit if needed."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


async def _open_one(
    http: aiohttp.ClientSession, url: str, gate: asyncio.Semaphore
) -> aiohttp.ClientWebSocketResponse:
    async with gate:
        ws = await http.ws_connect(url, autoclose=False, heartbeat=None)
        frame = await asyncio.wait_for(ws.receive(), CONNECT_DEADLINE)
        assert frame.type == aiohttp.WSMsgType.BINARY, frame
        assert isinstance(decode(frame.data), SyncStep1)
        return ws


async def wait_for_health(url: str, **expected: int) -> None:
    async with asyncio.timeout(CONNECT_DEADLINE):
        while True:
            now = await health(url)
            if all(now[k] == v for k, v in expected.items()):
                return
            await asyncio.sleep(0.05)


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
        sockets = await asyncio.gather(
            *(_open_one(http, f"{base}load-{i % rooms}", gate) for i in range(count))
        )
        seconds = time.perf_counter() - started
        await wait_for_health(server.url, connections=count)
        open_rss = rss_kib(pid)
        await asyncio.gather(*(ws.close() for ws in sockets))
    await wait_for_health(server.url, connections=0, rooms_loaded=0)
    return ConnectionReport(count, rooms, seconds, before, open_rss, rss_kib(pid))


def main(argv: list[str] | None = None) -> int:
    from tests.conftest import ServerProcess

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--rooms", type=int, default=100)
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="repeat on the same server: a leak grows every round, allocator reuse does not",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="connections-") as tmp:
        server = ServerProcess(Path(tmp) / "data", ["--idle-unload", "1"])
        server.start()
        try:
            for round_ in range(1, args.rounds + 1):
                report = asyncio.run(hold_connections(server, args.connections, args.rooms))
                print(report.line() + f" round={round_}", flush=True)
            code = server.stop()
        finally:
            server.kill()
    print(f"RESULT connections sigterm_exit={code}")
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
