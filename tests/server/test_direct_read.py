"""Binary frames handed to the connection inside the socket's data_received.

The direct path must change nothing a client can see: frames that came with the upgrade
request are not lost, a frame the connection cannot take at once waits in aiohttp's
queue and nothing behind it overtakes it, and control and text frames still reach the
handler's read loop.
"""

from __future__ import annotations

import asyncio
import os
import struct
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import aiohttp
import pytest
from aiohttp import WSMsgType, web
from pycrdt import Doc

from engine.errors import Close
from engine.protocol import SyncStep1, SyncStep2, Update, decode, encode
from harness.wire import connect, edit
from server.http.direct_read import DirectWebSocketResponse
from tests.conftest import ServerProcess


def client_frame(payload: bytes, opcode: int = 0x2) -> bytes:
    """One final, masked client frame (RFC 6455 5.2)."""
    mask = os.urandom(4)
    size = len(payload)
    head = bytes((0x80 | opcode,))
    if size < 126:
        head += bytes((0x80 | size,))
    else:
        head += bytes((0x80 | 126,)) + struct.pack("!H", size)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


async def read_frame(reader: asyncio.StreamReader) -> bytes:
    """The payload of one unmasked server frame."""
    first, second = await reader.readexactly(2)
    assert first == 0x82, f"expected a final binary frame, got {first:#x}"
    size = second & 0x7F
    if size == 126:
        (size,) = struct.unpack("!H", await reader.readexactly(2))
    elif size == 127:
        (size,) = struct.unpack("!Q", await reader.readexactly(8))
    return await reader.readexactly(size)


async def test_frames_sent_with_the_upgrade_request_are_not_lost(server: ServerProcess) -> None:
    url = urlsplit(server.url)
    source_update = edit(Doc(), "early")
    request = (
        "GET /rooms/early HTTP/1.1\r\n"
        f"Host: {url.netloc}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()
    frames = client_frame(encode(SyncStep1(b"\x00"))) + client_frame(encode(Update(source_update)))
    async with asyncio.timeout(30):
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        writer.write(request + frames)  # one write: the frames ride with the request
        await writer.drain()
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
        seen = [decode(await read_frame(reader)) for _ in range(2)]
        assert isinstance(seen[0], SyncStep1)
        assert isinstance(seen[1], SyncStep2)  # the early step 1 was answered
        async with connect(server.url, "early") as reader_client:
            await reader_client.sync()
            await reader_client.wait_text("early")  # the early update was applied
        writer.close()


class Recorder:
    """A receiver that takes frames until told to refuse them."""

    def __init__(self) -> None:
        self.taken: list[bytes] = []
        self.refuse = False

    def receive_now(self, frame: bytes) -> bool:
        if self.refuse:
            return False
        self.taken.append(frame)
        return True

    def close(self, code: Close, detail: str | None = None) -> None:
        raise AssertionError(f"closed: {code} {detail}")


@pytest.fixture
async def echo_site() -> AsyncIterator[tuple[str, Recorder, asyncio.Queue[object]]]:
    """An in-process aiohttp server whose handler reports what its read loop sees."""
    recorder = Recorder()
    seen: asyncio.Queue[object] = asyncio.Queue()
    go_on = asyncio.Event()

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = DirectWebSocketResponse(max_msg_size=1024)
        await ws.prepare(request)
        assert ws.direct
        ws.hand_frames_to(recorder)
        await seen.put("ready")
        await go_on.wait()  # the test's frames arrive while the loop is not reading
        async for message in ws:
            await seen.put((message.type, message.data))
        await seen.put(("end", ws.close_code))
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    seen.put_nowait(go_on)
    yield f"http://127.0.0.1:{port}/ws", recorder, seen
    await runner.cleanup()


async def test_a_refused_frame_waits_and_nothing_overtakes_it(
    echo_site: tuple[str, Recorder, asyncio.Queue[object]],
) -> None:
    url, recorder, seen = echo_site
    go_on = await seen.get()
    assert isinstance(go_on, asyncio.Event)
    async with asyncio.timeout(30), aiohttp.ClientSession() as session:
        async with session.ws_connect(url) as ws:
            assert await seen.get() == "ready"
            await ws.send_bytes(b"one")
            await _settle(lambda: recorder.taken == [b"one"])
            recorder.refuse = True
            await ws.send_bytes(b"two")  # refused: queued for the read loop
            await asyncio.sleep(0.2)
            recorder.refuse = False
            await ws.send_bytes(b"three")  # behind "two": must not go direct
            await ws.ping(b"p")
            await ws.send_str("text")
            await asyncio.sleep(0.2)
            go_on.set()
            assert await seen.get() == (WSMsgType.BINARY, b"two")
            assert await seen.get() == (WSMsgType.BINARY, b"three")
            assert await seen.get() == (WSMsgType.TEXT, "text")
            await ws.send_bytes(b"four")  # the queue is empty again: direct
            await _settle(lambda: recorder.taken == [b"one", b"four"])
            await ws.send_bytes(b"x" * 2048)  # over max_msg_size: aiohttp closes 1009
            message = await ws.receive()
            assert message.type is WSMsgType.CLOSE and message.data == 1009
        assert recorder.taken == [b"one", b"four"]


async def _settle(predicate: object, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():  # type: ignore[operator]
            await asyncio.sleep(0.01)
