"""The /hocuspocus socket under hostile input, at the byte level: whatever one document
sends wrong, that document is refused or closed with a reason and the socket's other
documents carry on; only a frame no document can be read from ends the socket."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from pycrdt import Doc

from engine import hocuspocus_protocol as hp
from engine.protocol import SyncStep1, SyncStep2, encode
from harness.wire import edit
from tests.conftest import ServerProcess, StartServer

WAIT = 20.0


class Socket:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws

    async def send(self, frame: bytes) -> None:
        await self.ws.send_bytes(frame)

    async def next_for(self, document: str, kind: int) -> hp.Envelope:
        """The next frame about `document` of type `kind` (others are skipped)."""
        async with asyncio.timeout(WAIT):
            while True:
                message = await self.ws.receive()
                assert message.type is aiohttp.WSMsgType.BINARY, message
                envelope = hp.open_envelope(message.data)
                if (envelope.document, envelope.kind) == (document, kind):
                    return envelope

    async def join(self, document: str) -> None:
        await self.send(hp.token_message(document, ""))
        answer = hp.read_auth_answer((await self.next_for(document, hp.AUTH)).body)
        assert answer.scope == hp.SCOPE_READ_WRITE

    async def write(self, document: str, text: str) -> None:
        """A step 2 carrying `text`, then its SyncStatus (saved)."""
        await self.send(hp.wrap(document, encode(SyncStep2(edit(Doc(), text)))))
        status = await self.next_for(document, hp.SYNC_STATUS)
        assert hp.read_sync_status(status.body) is True


async def open_socket(server: ServerProcess, session: aiohttp.ClientSession) -> Socket:
    url = server.url.replace("http://", "ws://") + "/hocuspocus"
    return Socket(await session.ws_connect(url, autoclose=False))


async def test_a_bad_document_is_refused_and_the_socket_keeps_serving_the_others(
    server: ServerProcess,
) -> None:
    async with aiohttp.ClientSession() as session:
        socket = await open_socket(server, session)
        await socket.join("good")
        await socket.send(hp.token_message("bad/name", ""))
        refused = await socket.next_for("bad/name", hp.AUTH)
        assert "room name" in (hp.read_auth_answer(refused.body).denied or "")
        await socket.send(hp.wrap("garbled", b"\x02\x07"))  # an auth message with no token
        await socket.send(hp.token_message("garbled", "") + b"\xff")  # a version that is not
        await socket.join("other")
        await socket.send(hp.wrap("other", b"\x00\x09\x00"))  # sync step 9
        closed = await socket.next_for("other", hp.CLOSE)
        assert "malformed" in hp.read_close_reason(closed.body)
        await socket.write("good", "still here")
        await socket.send(hp.wrap("good", encode(SyncStep1(b"\x00"))))
        await socket.next_for("good", hp.SYNC)
        await socket.ws.close()


async def test_a_frame_without_a_document_name_ends_the_socket(server: ServerProcess) -> None:
    async with aiohttp.ClientSession() as session:
        for frame in (b"\x05ab", b"\x80"):
            socket = await open_socket(server, session)
            await socket.join("doc")
            await socket.send(frame)
            async with asyncio.timeout(WAIT):
                while (message := await socket.ws.receive()).type is aiohttp.WSMsgType.BINARY:
                    pass
            assert message.type is aiohttp.WSMsgType.CLOSE and message.data == 4400
        socket = await open_socket(server, session)
        await socket.ws.send_str("hello")
        message = await socket.ws.receive(timeout=WAIT)
        assert message.type is aiohttp.WSMsgType.CLOSE and message.data == 4400
        await socket.ws.close()


async def test_a_page_from_another_origin_is_refused_before_the_upgrade(
    server_factory: StartServer,
) -> None:
    server = server_factory("--allowed-origins", "https://app.example")
    url = server.url.replace("http://", "ws://") + "/hocuspocus"
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(url, headers={"Origin": "https://evil.example"})
        assert refused.value.status == 403
        allowed = Socket(await session.ws_connect(url, headers={"Origin": "https://app.example"}))
        await allowed.join("doc")
        await allowed.ws.close()
