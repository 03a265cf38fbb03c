"""Protocol fuzzing of the live socket: random and mutated y-websocket frames on one
connection (reconnecting whenever the server closes it), while a writer and a reader in
the same room and a pair in another room keep exchanging probes.

Pass: the process stays up, every probe arrives in both rooms, nothing the server relays
fails to apply in a stock pycrdt client, and `performer verify` accepts whatever the
fuzzer managed to get stored. Every frame should be answered: either the connection stays
alive (a SyncStep1 sent after it is answered) or the server closes it with a close code;
frames after which the connection broke without one are counted (`unanswered`), and the
caller decides how many it tolerates. Long form::

    python -m benchmarks.reliability.fuzz --frames 20000
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from pycrdt import Array, Doc, Map, Text

from engine.protocol import (
    AwarenessEntry,
    AwarenessUpdate,
    Message,
    PermissionDeniedMessage,
    QueryAwareness,
    Saved,
    SyncStep1,
    SyncStep2,
    Update,
    encode,
    encode_awareness,
    write_varuint,
)
from harness.common import Server, health, verify_store
from harness.wire import WireClient, connect, edit

PROBE_EVERY = 50
PROBE_DEADLINE = 15.0


def seed_frames(rng: random.Random) -> list[bytes]:
    """Valid frames of every message type, with real Yjs updates of several shapes."""
    doc: Doc[Any] = Doc()
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(bytes(event.update)))
    text = doc.get("t", type=Text)
    text.insert(0, "hello world")
    del text[2:5]
    doc.get("m", type=Map)["k"] = {"nested": [1, 2, {"x": "y"}]}
    doc.get("m", type=Map)["sub"] = Map({"a": Array([1, "two", None])})
    doc.get("a", type=Array).extend([1.5, True, "s", b"bytes"])
    messages: list[Message] = [
        SyncStep1(bytes(doc.get_state())),
        SyncStep1(b"\x00"),
        SyncStep2(bytes(doc.get_update())),
        SyncStep2(b"\x00\x00"),
        QueryAwareness(),
        Saved(3, 9),
        PermissionDeniedMessage("no"),
        AwarenessUpdate(
            encode_awareness(
                [AwarenessEntry(rng.randrange(1, 2**31), 1, '{"user":{"name":"fuzz"}}')]
            )
        ),
        AwarenessUpdate(encode_awareness([AwarenessEntry(7, 2, "null")])),
    ]
    messages += [Update(u) for u in updates]
    return [encode(m) for m in messages]


def mutate(rng: random.Random, seeds: list[bytes]) -> bytes:
    """One fuzz frame: a seed frame bent in one or a few ways, or plain noise."""
    if rng.random() < 0.1:
        return rng.randbytes(rng.randrange(0, 64))
    frame = bytearray(rng.choice(seeds))
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        op = rng.randrange(7)
        at = rng.randrange(len(frame) + 1)
        if op == 0 and frame:  # flip a bit
            i = min(at, len(frame) - 1)
            frame[i] ^= 1 << rng.randrange(8)
        elif op == 1 and frame:  # set a byte to an edge value
            frame[min(at, len(frame) - 1)] = rng.choice((0x00, 0x01, 0x7F, 0x80, 0xFF))
        elif op == 2:  # truncate
            del frame[at:]
        elif op == 3:  # insert noise
            frame[at:at] = rng.randbytes(rng.randrange(1, 9))
        elif op == 4 and frame:  # duplicate a slice
            end = rng.randrange(at, len(frame) + 1)
            frame[at:at] = frame[at:end]
        elif op == 5:  # splice in part of another frame
            other = rng.choice(seeds)
            frame[at:] = other[rng.randrange(len(other) + 1) :]
        else:  # a huge varint where a length or count goes
            big = bytearray()
            write_varuint(big, rng.choice((2**31, 2**53, 2**63, 10**6)))
            frame[at:at] = big
    return bytes(frame)


@dataclass
class FuzzReport:
    frames: int = 0
    accepted: int = 0
    connections: int = 0
    probes: int = 0
    close_codes: Counter[int] = field(default_factory=Counter)  # frames refused, by code
    unanswered: int = 0  # frames after which the connection broke without a close code
    first_unanswered: int = 0  # its frame number, counted from 1
    problems: list[str] = field(default_factory=list)

    @property
    def refused(self) -> int:
        return sum(self.close_codes.values())

    def line(self) -> str:
        codes = ",".join(f"{k}:{v}" for k, v in sorted(self.close_codes.items()))
        return (
            f"RESULT fuzz frames={self.frames} accepted={self.accepted} refused={self.refused} "
            f"unanswered={self.unanswered} connections={self.connections} "
            f"probes={self.probes} close_codes={codes} problems={len(self.problems)}"
        )


@dataclass
class Probe:
    """A writer and a reader in one room: every probe the writer sends must arrive."""

    writer: WireClient
    reader: WireClient
    sent: int = 0

    async def check(self) -> None:
        token = f"<{self.sent}>"
        self.sent += 1
        await self.writer.send(Update(edit(self.writer.doc, token, name="probe")))
        async with asyncio.timeout(PROBE_DEADLINE):
            while token not in str(self.reader.doc.get("probe", type=Text)):
                message = await self.reader.recv(PROBE_DEADLINE)
                if message is None:
                    raise AssertionError(f"probe reader closed with {self.reader.close_code}")


async def _accepted(target: WireClient, frame: bytes) -> bool:
    """Send one fuzz frame, then a SyncStep1: its answer means the frame was taken (or
    ignored) and the connection is alive; a close means it was refused."""
    try:
        await target.send_raw(frame)
        await target.send(SyncStep1(bytes(target.doc.get_state())))
    except (aiohttp.ClientError, ConnectionError, RuntimeError):
        pass  # closed already: the close frame, read below, says why
    while True:
        try:
            message = await target.recv(PROBE_DEADLINE)
        except (aiohttp.ClientError, ConnectionError):
            return False
        if message is None:
            return False
        if isinstance(message, SyncStep2):
            return True


async def fuzz(url: str, frames: int, seed: int, room: str = "fuzz") -> FuzzReport:
    rng = random.Random(seed)
    seeds = seed_frames(rng)
    report = FuzzReport()
    async with AsyncExitStack() as stack:
        probes = []
        for name in (room, f"{room}-calm"):
            writer = await stack.enter_async_context(connect(url, name))
            reader = await stack.enter_async_context(connect(url, name))
            await writer.sync()
            await reader.sync()
            probes.append(Probe(writer, reader))
        while report.frames < frames:
            async with connect(url, room) as target:
                report.connections += 1
                alive = True
                while report.frames < frames and alive:
                    try:
                        alive = await _accepted(target, mutate(rng, seeds))
                    except ValueError as exc:  # a relayed update pycrdt cannot apply
                        report.problems.append(f"frame {report.frames}: relayed {exc}")
                        raise
                    report.frames += 1
                    report.accepted += alive
                    if report.frames % PROBE_EVERY == 0:
                        await _probe_all(probes, report)
                if alive:
                    continue
                if target.close_code in (None, aiohttp.WSCloseCode.ABNORMAL_CLOSURE):
                    # 1006 is what the client library reports when no close frame came
                    report.unanswered += 1
                    report.first_unanswered = report.first_unanswered or report.frames
                else:
                    report.close_codes[target.close_code] += 1
        await _probe_all(probes, report)
    return report


async def _probe_all(probes: list[Probe], report: FuzzReport) -> None:
    for probe in probes:
        try:
            await probe.check()
        except (AssertionError, TimeoutError, ValueError) as exc:
            report.problems.append(f"after {report.frames} frames: {type(exc).__name__}: {exc}")
            raise
    report.probes += 1


async def fuzz_and_check(server: Server, frames: int, seed: int) -> FuzzReport:
    """Fuzz, then check the process, its health and the store it leaves behind."""
    report = await fuzz(server.url, frames, seed)
    assert server.process is not None
    if server.process.poll() is not None:
        report.problems.append(f"server exited with {server.process.returncode}")
        return report
    if (await health(server.url))["status"] != "ok":
        report.problems.append("healthz is not ok")
    code = await asyncio.to_thread(server.stop)
    if code != 0:
        report.problems.append(f"SIGTERM exit code {code}")
    verified, output = await asyncio.to_thread(verify_store, server.data_dir)
    if verified != 0:
        report.problems.append(f"performer verify: {output}")
    return report
