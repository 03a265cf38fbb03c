"""The harness's end of the abuse attacker: a spawned local process, or a process on
another machine reached over TCP.

On one small machine the attacking clients share the server's cores, and their CPU alone
moves the probe's latency (see `harness.busy`). `RemoteAttacker` keeps the attacker on
another host: there `python -m benchmarks.reliability.abuse --attacker-listen HOST:PORT`
waits (`harness.abuse_attacks.serve_attacks`); the harness connects, sends the server's URL
(as the attacker host reaches it) and the sizes, and the run goes on exactly as with a
local process: the same messages (`ready`, `finish`, `expired`, `stop`, the tally) over a
`multiprocessing.connection` authenticated with a shared key.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from dataclasses import asdict
from multiprocessing.connection import Client
from typing import Any

from harness.abuse_attacks import ATTACKER_NICE, AbuseSizes, AttackTally, attacker_main

DEADLINE = 60.0


class Attacker:
    """The attacks, in a spawned process at `ATTACKER_NICE` (see harness.abuse_attacks)."""

    def __init__(self, url: str, sizes: AbuseSizes) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process: Any = context.Process(
            target=attacker_main,
            args=(url, asdict(sizes), child, ATTACKER_NICE),
            name="abuse-attacker",
            daemon=True,
        )

    async def start(self) -> None:
        """Start the attacks; returns once they all run (the streams are open)."""
        self._process.start()
        await self._expect("ready")

    async def finish(self) -> None:
        """Let the expiring streams end (they must, by their tokens' expiry)."""
        self._conn.send("finish")
        await self._expect("expired")

    async def stop(self) -> AttackTally:
        self._conn.send("stop")
        raw = await self._receive()
        await asyncio.to_thread(self._process.join, DEADLINE)
        return AttackTally.from_dict(raw)

    def kill(self) -> None:
        if self._process.is_alive():
            self._process.kill()
        self._process.join(DEADLINE)

    async def _expect(self, word: str) -> None:
        said = await self._receive()
        if said != word:
            raise RuntimeError(f"the attacker said {said!r}, expected {word!r}")

    async def _receive(self) -> Any:
        async with asyncio.timeout(DEADLINE * 2):
            ready = await asyncio.to_thread(self._conn.poll, DEADLINE * 2)
        if not ready:
            raise TimeoutError("the attacker process did not answer")
        return self._conn.recv()


class RemoteAttacker(Attacker):
    """The attacks, run by `serve_attacks` at `address` (another machine's HOST, PORT)."""

    def __init__(self, url: str, sizes: AbuseSizes, address: tuple[str, int], key: bytes) -> None:
        self._address, self._key = address, key
        self._url, self._sizes = url, sizes

    async def start(self) -> None:
        self._conn = await asyncio.to_thread(Client, self._address, authkey=self._key)
        self._conn.send((self._url, asdict(self._sizes)))
        await self._expect("ready")

    async def stop(self) -> AttackTally:
        self._conn.send("stop")
        raw = await self._receive()
        self._conn.close()
        return AttackTally.from_dict(raw)

    def kill(self) -> None:
        """Close the link: the attacker host ends this run's attacks and waits for the
        next (it never outlives a harness that died)."""
        conn = getattr(self, "_conn", None)
        if conn is not None and not conn.closed:
            conn.close()
