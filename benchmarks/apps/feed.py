"""Many change-feed subscribers on one room: the server's CPU and the time from an edit's
commit to its event at every subscriber.

    python -m benchmarks.apps.feed [--subscribers 1 100 1000] [--edits 100] [--rate 10]

Each edit is POSTed to the REST API, which answers once it is durable; the latency is from
that answer to each subscriber reading the event (so it is commit-to-event). One client
process holds every subscription, so at the high end the client's own CPU is in the
figure too; its CPU is reported beside the server's.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from pycrdt import Doc

from harness import results
from harness.process import ServerProcess
from harness.wire import edit

DEFAULT_JSON = Path(__file__).resolve().parents[1] / "results" / "feed.json"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks


async def subscriber(http: aiohttp.ClientSession, url: str, seen: dict[int, list[float]],
                     ready: asyncio.Event, count: list[int], total: int) -> None:  # fmt: skip
    async with http.get(url, headers={"Accept": "text/event-stream"}) as response:
        count[0] += 1
        if count[0] == total:
            ready.set()
        async for line in response.content:
            if line.startswith(b"id: "):
                seen.setdefault(int(line[4:]), []).append(time.perf_counter())


async def run(base: str, subscribers: int, edits: int, rate: float, pid: int) -> dict[str, Any]:
    seen: dict[int, list[float]] = {}
    committed: dict[int, float] = {}
    ready, count = asyncio.Event(), [0]
    author: Doc[Any] = Doc()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        await http.post(f"{base}/v1/rooms/feed/update", data=edit(author, "start"))
        url = f"{base}/v1/rooms/feed/changes?after=1"
        tasks = [asyncio.create_task(subscriber(http, url, seen, ready, count, subscribers))
                 for _ in range(subscribers)]  # fmt: skip
        await asyncio.wait_for(ready.wait(), 60)
        cpu0, wall0, mine0 = cpu_seconds(pid), time.perf_counter(), time.process_time()
        for _ in range(edits):
            started = time.perf_counter()
            async with http.post(f"{base}/v1/rooms/feed/update", data=edit(author, "x")) as r:
                committed[(await r.json())["seq"]] = time.perf_counter()
            await asyncio.sleep(max(0.0, 1 / rate - (time.perf_counter() - started)))
        deadline = time.perf_counter() + 30
        while any(len(seen.get(s, [])) < subscribers for s in committed):
            assert time.perf_counter() < deadline, "events missing after 30 s"
            await asyncio.sleep(0.05)
        wall = time.perf_counter() - wall0
        cpu, mine = cpu_seconds(pid) - cpu0, time.process_time() - mine0
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    latencies = sorted((t - committed[s]) * 1000 for s in committed for t in seen[s])
    return {"subscribers": subscribers, "events": len(latencies),
            "p50_ms": round(statistics.median(latencies), 2),
            "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 2),
            "server_cpu_percent": round(100 * cpu / wall, 1),
            "server_cpu_us_per_event": round(1e6 * cpu / len(latencies), 1),
            "client_cpu_percent": round(100 * mine / wall, 1)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subscribers", type=int, nargs="+", default=[1, 100, 1000])
    parser.add_argument("--edits", type=int, default=100)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args(argv)
    rows, lines = [], []
    for count in args.subscribers:
        with tempfile.TemporaryDirectory() as data:
            server = ServerProcess(Path(data), [], {"PERFORMER_LOG": "CRITICAL"})
            server.start()
            try:
                assert server.process is not None
                row = asyncio.run(run(server.url, count, args.edits, args.rate, server.process.pid))
            finally:
                server.kill()
        rows.append(row)
        lines.append(" ".join(f"{k}={v}" for k, v in row.items()))
        print(lines[-1], flush=True)
    results.write(args.json, module="benchmarks.apps.feed", argv=argv, result={"rows": rows},
                  lines=lines, problems=[], exit_code=0)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
