"""Edits under load for the operations tests and benchmarks: writers POST updates to
many rooms and remember what the server acknowledged (the reply carries the seq), and
when."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from pycrdt import Doc, Text

HTTP_DEADLINE = 30.0


@dataclass
class Acked:
    token: str
    seq: int
    at: float  # time.time() when the reply arrived


@dataclass
class RoomWriter:
    room: str
    doc: Doc[Any] = field(default_factory=Doc)
    acked: list[Acked] = field(default_factory=list)

    def acked_before(self, moment: float) -> list[Acked]:
        return [a for a in self.acked if a.at < moment]


class Load:
    """`rooms` writers, each posting one small insert after another until stopped."""

    def __init__(self, url: str, rooms: int, prefix: str = "room") -> None:
        self.url = url
        self.writers = [RoomWriter(f"{prefix}-{i}") for i in range(rooms)]
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._http: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._http = aiohttp.ClientSession()
        self._tasks = [asyncio.create_task(self._write(w)) for w in self.writers]

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.close()

    async def _write(self, writer: RoomWriter) -> None:
        assert self._http is not None
        text = writer.doc.get("t", type=Text)
        n = 0
        while not self._stop.is_set():
            token = f"{writer.room}/{n};"
            before = writer.doc.get_state()
            text += token
            update = writer.doc.get_update(before)
            try:
                async with asyncio.timeout(HTTP_DEADLINE):
                    reply = await self._http.post(
                        f"{self.url}/v1/rooms/{writer.room}/update", data=update
                    )
                    body = await reply.json() if reply.status == 200 else None
            except (aiohttp.ClientError, OSError, TimeoutError):
                return  # the server went away (the kill -9 tests)
            if body is not None:
                writer.acked.append(Acked(token, int(body["seq"]), time.time()))
            n += 1

    def total(self) -> int:
        return sum(len(w.acked) for w in self.writers)


async def wait_for_edits(load: Load, at_least: int, seconds: float = 60.0) -> None:
    """Until every room has `at_least` acknowledged edits (or fail at the deadline)."""
    async with asyncio.timeout(seconds):
        while min(len(w.acked) for w in load.writers) < at_least:
            await asyncio.sleep(0.05)


async def room_text(url: str, room: str, at: str | None = None) -> str:
    """The room's text as the server at `url` stores it (optionally `?at=`)."""
    query = f"?at={at}" if at is not None else ""
    async with aiohttp.ClientSession() as http, asyncio.timeout(HTTP_DEADLINE):
        reply = await http.get(f"{url}/v1/rooms/{room}/state{query}")
        assert reply.status == 200, (room, reply.status, await reply.text())
        doc: Doc[Any] = Doc()
        doc.apply_update(await reply.read())
    return str(doc.get("t", type=Text))
