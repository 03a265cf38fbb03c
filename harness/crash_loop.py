"""Crash loop: writers and observers in several rooms, SIGKILL at a random moment,
restart on the same data directory, and check that nothing anyone saw or was told is
saved went missing.

Per trial, each room has writers (connected with `ack=1`, each appending numbered tokens
`0;1;2;...` to its own Y.Text) and an observer. After the kill and restart:

* every writer's text is exactly `0;1;...;k-1;` (no gap, no duplicate) with k at least
  the highest "saved" count it received (acknowledged => durable);
* every struct an observer received is in the stored room (its state vector is covered:
  the output rule means nothing is broadcast before it is durable);
* texts verified in earlier trials are unchanged (compaction and restarts never lose or
  rewrite history);
* the room loaded by the server (fresh WebSocket sync) equals the stored state (REST);
* `performer verify --data DIR` exits 0 on the crashed store.

Rooms pass 1,000 updates within a few trials, so snapshots are written (compaction) while
the kills land. A client task that fails for any reason other than its socket dying
with the server is reported as a loss. Long form::

    python -m benchmarks.reliability.crash_loop --trials 200
"""

from __future__ import annotations

import asyncio
import random
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from pycrdt import Doc, Text

from engine.protocol import Saved, SyncStep2, Update
from harness.common import Server, durable_doc, missing_clocks, verify_store
from harness.wire import WireClient, connect, edit

WINDOW = 200  # unacknowledged updates a writer may have in flight
TRIAL_DEADLINE = 60.0


@dataclass
class Writer:
    room: str
    key: str
    client: WireClient
    sent: int = 0
    acked: int = 0
    progress: asyncio.Event = field(default_factory=asyncio.Event)
    dead: bool = False


@dataclass
class Observer:
    room: str
    client: WireClient
    received: int = 0


@dataclass
class TrialResult:
    trial: int
    ran_seconds: float
    sent: int = 0
    acked: int = 0
    observed: int = 0
    compactions: int = 0
    lost: list[str] = field(default_factory=list)


@dataclass
class CrashLoop:
    """State kept across trials: what each key held when last verified."""

    server: Server
    rng: random.Random
    rooms: int = 3
    writers_per_room: int = 2
    trials_per_room: int = 25
    max_run_seconds: float = 1.5
    verified: dict[tuple[str, str], str] = field(default_factory=dict)

    def room_names(self, trial: int) -> list[str]:
        generation = trial // self.trials_per_room
        return [f"crash-{generation}-{r}" for r in range(self.rooms)]

    async def trial(
        self, trial: int, *, verify: bool, run_for: float | None = None, graceful: bool = False
    ) -> TrialResult:
        """One run: connect, edit for `run_for` seconds (random by default), then SIGKILL
        (or SIGTERM with `graceful`: exit 0, every client closed with 1001), restart, check."""
        if run_for is None:
            run_for = self.rng.uniform(0.05, self.max_run_seconds)
        result = TrialResult(trial, run_for)
        writers: list[Writer] = []
        observers: list[Observer] = []
        stop = asyncio.Event()
        async with AsyncExitStack() as stack:
            for room in self.room_names(trial):
                for k in range(self.writers_per_room):
                    client = await stack.enter_async_context(
                        connect(self.server.url, room, ack=True)
                    )
                    writers.append(Writer(room, f"t{trial}w{k}", client))
                client = await stack.enter_async_context(connect(self.server.url, room))
                observers.append(Observer(room, client))
            peers = [w.client for w in writers] + [o.client for o in observers]
            for peer in peers:
                await peer.sync()
            tasks = [asyncio.create_task(_write(w, stop)) for w in writers]
            tasks += [asyncio.create_task(_read_acks(w)) for w in writers]
            tasks += [asyncio.create_task(_observe(o)) for o in observers]
            await asyncio.sleep(run_for)
            result.compactions = await compactions(self.server.url)
            if graceful:
                stopping = asyncio.create_task(asyncio.to_thread(self.server.stop))
            else:
                self.server.kill()
            stop.set()
            async with asyncio.timeout(TRIAL_DEADLINE):
                outcomes = await asyncio.gather(*tasks, return_exceptions=True)
                result.lost += [
                    f"client task failed: {type(e).__name__}: {e}"
                    for e in outcomes
                    if isinstance(e, BaseException)
                ]
                if graceful:
                    code = await stopping
                    if code != 0:
                        result.lost.append(f"SIGTERM: exit code {code}")
                    codes = {peer.close_code for peer in peers}
                    if codes != {1001}:
                        result.lost.append(f"SIGTERM: clients closed with {codes}, not 1001")
        if verify:
            code, output = await asyncio.to_thread(verify_store, self.server.data_dir)
            if code != 0:
                result.lost.append(f"performer verify exited {code}: {output}")
        self.server.restart()
        await self._check(writers, observers, result)
        return result

    async def _check(
        self, writers: list[Writer], observers: list[Observer], result: TrialResult
    ) -> None:
        stored: dict[str, Doc[Any]] = {}
        for room in {w.room for w in writers}:
            stored[room] = await durable_doc(self.server.url, room)
            loaded = await _loaded_doc(self.server.url, room)
            if missing_clocks(loaded, stored[room]) or missing_clocks(stored[room], loaded):
                result.lost.append(f"{room}: the loaded room differs from the stored state")
        for w in writers:
            result.sent += w.sent
            result.acked += w.acked
            text = str(stored[w.room].get(w.key, type=Text))
            count = text.count(";")
            if text != _tokens(count):
                result.lost.append(f"{w.room}/{w.key}: malformed text {text[:80]!r}")
            if count < w.acked:
                result.lost.append(f"{w.room}/{w.key}: {w.acked} acknowledged, {count} stored")
            self.verified[(w.room, w.key)] = text
        for o in observers:
            result.observed += o.received
            gone = missing_clocks(stored[o.room], o.client.doc)
            if gone:
                result.lost.append(f"{o.room}: observed structs missing: {gone}")
        for (room, key), text in self.verified.items():
            if room in stored and str(stored[room].get(key, type=Text)) != text:
                result.lost.append(f"{room}/{key}: changed after it was verified")
        for room in {room for room, _ in self.verified} - set(stored):
            doc = await durable_doc(self.server.url, room)
            for (r, key), text in self.verified.items():
                if r == room and str(doc.get(key, type=Text)) != text:
                    result.lost.append(f"{room}/{key}: changed after it was verified")


def _tokens(count: int) -> str:
    return "".join(f"{i};" for i in range(count))


async def _write(writer: Writer, stop: asyncio.Event) -> None:
    """Append tokens as fast as the window allows, until stopped or the socket dies."""
    while not stop.is_set() and not writer.dead:
        if writer.sent - writer.acked >= WINDOW:
            writer.progress.clear()
            try:
                await asyncio.wait_for(writer.progress.wait(), 0.5)
            except TimeoutError:
                pass
            continue
        update = edit(writer.client.doc, f"{writer.sent};", name=writer.key)
        try:
            await writer.client.send(Update(update))
        except (aiohttp.ClientError, ConnectionError, RuntimeError):
            return
        writer.sent += 1
        if writer.sent % 50 == 0:
            await asyncio.sleep(0)


async def _read_acks(writer: Writer) -> None:
    try:
        while (message := await writer.client.recv(timeout=TRIAL_DEADLINE)) is not None:
            if isinstance(message, Saved):
                writer.acked = max(writer.acked, message.count)
                writer.progress.set()
    except (aiohttp.ClientError, ConnectionError):
        pass  # the server was killed: the socket errors out
    finally:
        writer.dead = True
        writer.progress.set()


async def _observe(observer: Observer) -> None:
    try:
        while (message := await observer.client.recv(timeout=TRIAL_DEADLINE)) is not None:
            if isinstance(message, (Update, SyncStep2)):
                observer.received += 1
    except (aiohttp.ClientError, ConnectionError):
        pass  # the server was killed: the socket errors out


async def compactions(url: str) -> int:
    """Snapshots the running server has written (its /metrics), read just before a kill."""
    try:
        async with aiohttp.ClientSession() as http, asyncio.timeout(5):
            text = await (await http.get(f"{url}/metrics")).text()
    except (aiohttp.ClientError, TimeoutError):
        return 0
    for line in text.splitlines():
        if line.startswith("performer_compactions_total"):
            return int(float(line.split()[-1]))
    return 0


async def _loaded_doc(url: str, room: str) -> Doc[Any]:
    """The room as the restarted server loads it, through a fresh WebSocket sync."""
    async with connect(url, room) as client:
        await client.sync()
        return client.doc


@dataclass
class Totals:
    trials: int = 0
    sent: int = 0
    acked: int = 0
    observed: int = 0
    compactions: int = 0
    lost: list[str] = field(default_factory=list)

    def add(self, result: TrialResult) -> None:
        self.trials += 1
        self.sent += result.sent
        self.acked += result.acked
        self.observed += result.observed
        self.compactions += result.compactions
        self.lost += [f"trial {result.trial}: {problem}" for problem in result.lost]

    def line(self) -> str:
        return (
            f"RESULT crash_loop trials={self.trials} updates_sent={self.sent} "
            f"acknowledged={self.acked} observed_messages={self.observed} "
            f"compactions_before_kill={self.compactions} lost={len(self.lost)}"
        )


async def run(loop: CrashLoop, trials: int, verify_every: int) -> Totals:
    totals = Totals()
    for trial in range(trials):
        verify = verify_every > 0 and (
            trial % verify_every == verify_every - 1 or trial == trials - 1
        )
        result = await loop.trial(trial, verify=verify)
        totals.add(result)
        print(
            f"trial {trial}: ran {result.ran_seconds:.2f}s sent={result.sent} "
            f"acked={result.acked} observed={result.observed} "
            f"compactions={result.compactions} lost={len(result.lost)}",
            flush=True,
        )
        for problem in result.lost:
            print(f"  LOST {problem}", flush=True)
    return totals
