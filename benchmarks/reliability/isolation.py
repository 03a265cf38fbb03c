"""One bad client must not hurt the others.

* Slow consumer: a client in the room stops reading while a writer sends updates; the
  other reader in that room still gets every update (the server cuts the sleeper off
  with 4408 once its send buffer passes `--send-buffer-bytes`, instead of queueing).
* Flooder: one client sends updates as fast as it can into its room; the server
  throttles it to `--rate` (delays, never drops: all its updates are saved), and a pair
  of clients in another room keeps exchanging probes.

The long form reports probe latency (p50/p99, one probe in flight at a time) with and
without the bad client; the tests only check that everything arrives::

    .venv/bin/python -m benchmarks.reliability.isolation --updates 2000
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from pycrdt import Doc, Map

from benchmarks.reliability.common import Server
from engine.protocol import Update
from tests.server.wire import WireClient, connect, edit

DEADLINE = 60.0


@dataclass
class Latencies:
    samples: list[float] = field(default_factory=list)

    def summary(self) -> str:
        if not self.samples:
            return "n=0"
        ordered = sorted(self.samples)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        return (
            f"n={len(ordered)} p50={statistics.median(ordered) * 1000:.2f}ms p99={p99 * 1000:.2f}ms"
        )


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
    server: Server, updates: int, size: int, sleeper: bool
) -> tuple[Latencies, int | None]:
    """Writer -> fast reader in a room where (optionally) a third client never reads.
    Returns the fast reader's latencies and the sleeper's close code (None: still open)."""
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
                code = await _close_code_if_closed(idle)
    return times, code


async def _close_code_if_closed(client: WireClient) -> int | None:
    """Read what the sleeper was sent, to see whether the server closed it (None: the
    kernel's socket buffers held it all, and the connection is still open)."""
    try:
        while await client.recv(timeout=2.0) is not None:
            pass
    except (aiohttp.ClientError, ConnectionError, TimeoutError):
        return None
    return client.close_code


async def flood(
    server: Server, flood_updates: int, probes: int, phase: str = "flood"
) -> tuple[Latencies, int]:
    """A flooder in one room, probes in another. Returns probe latencies and how many of
    the flooder's updates were saved (all of them, eventually)."""
    times = Latencies()
    async with (
        connect(server.url, f"{phase}-flooded", ack=True) as flooder,
        connect(server.url, f"{phase}-calm") as writer,
        connect(server.url, f"{phase}-calm") as reader,
    ):
        for client in (flooder, writer, reader):
            await client.sync()
        author: Doc[Any] = Doc()
        frames = [Update(edit(author, f"{i};")) for i in range(flood_updates)]
        flooding = asyncio.create_task(_send_all(flooder, frames))
        for i in range(probes):
            await probe(writer, reader, i, times)
        await asyncio.wait_for(flooding, DEADLINE)
        if not flood_updates:
            return times, 0
        saved = await flooder.wait_saved(flood_updates, timeout=DEADLINE * 2)
    return times, saved.count


async def _send_all(client: WireClient, frames: list[Update]) -> None:
    for frame in frames:
        await client.send(frame)


def main(argv: list[str] | None = None) -> int:
    from tests.conftest import ServerProcess

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--updates", type=int, default=2000, help="probes per phase")
    parser.add_argument("--size", type=int, default=20_000, help="bytes per slow-room update")
    parser.add_argument("--flood", type=int, default=20_000, help="flooder's updates")
    parser.add_argument("--rate", type=float, default=2000.0, help="server --rate")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="isolation-") as tmp:
        server = ServerProcess(
            Path(tmp) / "data",
            ["--send-buffer-bytes", "262144", "--rate", str(args.rate)],
        )
        server.start()
        try:
            alone, _ = asyncio.run(slow_consumer(server, args.updates, args.size, False))
            beside, code = asyncio.run(slow_consumer(server, args.updates, args.size, True))
            calm, _ = asyncio.run(flood(server, 0, args.updates, "baseline"))
            flooded, saved = asyncio.run(flood(server, args.flood, args.updates))
        finally:
            server.kill()
    print(f"RESULT isolation slow_consumer baseline {alone.summary()}")
    print(f"RESULT isolation slow_consumer with_sleeper {beside.summary()} sleeper_close={code}")
    print(f"RESULT isolation flood baseline {calm.summary()}")
    print(
        f"RESULT isolation flood with_flooder {flooded.summary()} "
        f"flooder_saved={saved}/{args.flood} rate={args.rate:.0f}/s"
    )
    return 0 if saved == args.flood else 1


if __name__ == "__main__":
    sys.exit(main())
