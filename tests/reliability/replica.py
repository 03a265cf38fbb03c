"""A minimal offline-first replica for the stateful test: it keeps its document across
connections, answers the server's SyncStep1 with what the server lacks (the resend on
reconnect), and counts the update messages it sent for the "saved" acks."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Any

import aiohttp
from pycrdt import Array, Doc, Map, Text

from engine.protocol import Saved, SyncStep1, SyncStep2, Update
from engine.yjs import decode_state_vector
from harness.wire import WireClient, connect

READ_FOREVER = 3600.0


class Replica:
    def __init__(self, name: str) -> None:
        self.name = name
        self.doc: Doc[Any] = Doc()
        self.history: list[bytes] = []  # every local update, for duplicate delivery
        self.client: WireClient | None = None
        self._stack: AsyncExitStack | None = None
        self._reader: asyncio.Task[None] | None = None
        self.sent = 0
        self.saved = 0
        self.step2_received = 0
        self._changed = asyncio.Event()

    # ------------------------------------------------------------------ connection

    @property
    def connected(self) -> bool:
        return self.client is not None and self._reader is not None and not self._reader.done()

    async def connect(self, url: str, room: str) -> None:
        await self.disconnect()
        self._stack = AsyncExitStack()
        self.client = await self._stack.enter_async_context(connect(url, room, ack=True))
        self.client.doc = self.doc
        self.sent = self.saved = self.step2_received = 0
        self._reader = asyncio.create_task(self._read(self.client))
        await self.client.send(SyncStep1(bytes(self.doc.get_state())))

    async def disconnect(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        if self._stack is not None:
            await self._stack.aclose()
        self.client = self._stack = self._reader = None

    async def _read(self, client: WireClient) -> None:
        try:
            while (message := await client.recv(READ_FOREVER)) is not None:
                match message:
                    case SyncStep1(state_vector):
                        await self._send(SyncStep2(bytes(self.doc.get_update(state_vector))))
                    case SyncStep2():
                        self.step2_received += 1
                    case Saved(count, _):
                        self.saved = max(self.saved, count)
                self._changed.set()
        except (aiohttp.ClientError, ConnectionError):
            pass
        finally:
            self._changed.set()

    async def _send(self, message: SyncStep2 | Update) -> None:
        if self.client is None:
            return
        try:
            await self.client.send(message)
        except (aiohttp.ClientError, ConnectionError, RuntimeError):
            return  # the socket died: the reconnect sync resends
        self.sent += 1

    async def wait(self, condition: Callable[[], bool], timeout: float = 20.0) -> None:
        async with asyncio.timeout(timeout):
            while not condition():
                if not self.connected:
                    raise AssertionError(f"{self.name} lost its connection while waiting")
                self._changed.clear()
                await self._changed.wait()

    async def settle(self) -> None:
        """Everything sent is durable, then everything durable is here."""
        await self.wait(lambda: self.sent > 0 and self.saved >= self.sent)
        before = self.step2_received
        assert self.client is not None
        await self.client.send(SyncStep1(bytes(self.doc.get_state())))
        await self.wait(lambda: self.step2_received > before)

    # ------------------------------------------------------------------ edits

    async def change(self, mutate: Callable[[Doc[Any]], None]) -> None:
        """Edit locally; send the update if connected (else it waits for the resend)."""
        updates: list[bytes] = []
        subscription = self.doc.observe(lambda event: updates.append(bytes(event.update)))
        mutate(self.doc)
        self.doc.unobserve(subscription)
        self.history += updates
        for update in updates:
            await self._send(Update(update))

    async def edit(self, op: str, **params: Any) -> None:
        """One of the stateful test's edits, by name (as the Node replica takes them)."""
        await self.change(lambda doc: MUTATIONS[op](doc, **params))

    async def redeliver(self, update: bytes) -> None:
        await self._send(Update(update))

    async def history_updates(self) -> list[bytes]:
        return self.history

    async def state(self) -> tuple[dict[str, Any], dict[int, int]]:
        return self.content(), self.clocks()

    async def close(self) -> None:
        await self.disconnect()

    # ------------------------------------------------------------------ comparison

    def content(self) -> dict[str, Any]:
        return content_of(self.doc)

    def clocks(self) -> dict[int, int]:
        return decode_state_vector(bytes(self.doc.get_state()))


def content_of(doc: Doc[Any]) -> dict[str, Any]:
    return {
        "t": str(doc.get("t", type=Text)),
        "a": doc.get("a", type=Array).to_py(),
        "m": doc.get("m", type=Map).to_py(),
    }


def _insert_text(doc: Doc[Any], where: float, word: str) -> None:
    text = doc.get("t", type=Text)
    text.insert(int(where * len(text)), word)


def _delete_text(doc: Doc[Any], where: float, length: int) -> None:
    text = doc.get("t", type=Text)
    start = int(where * len(text))
    if start < len(text):
        del text[start : min(len(text), start + length)]


def _push(doc: Doc[Any], value: Any) -> None:
    doc.get("a", type=Array).append(value)


def _set_key(doc: Doc[Any], key: str, value: Any) -> None:
    doc.get("m", type=Map)[key] = value


def _nested(doc: Doc[Any], key: str, value: Any) -> None:
    """A map inside the array, then an edit inside an existing nested map."""
    array = doc.get("a", type=Array)
    for item in array:
        if isinstance(item, Map):
            item[key] = value
            return
    array.append(Map({key: value, "list": Array([value])}))


MUTATIONS: dict[str, Callable[..., None]] = {
    "insert_text": _insert_text,
    "delete_text": _delete_text,
    "push": _push,
    "set_key": _set_key,
    "nested": _nested,
}
