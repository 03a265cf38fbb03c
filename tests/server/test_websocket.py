"""The WebSocket endpoint against a real server process: sync, output rule, bad input."""

from __future__ import annotations

import asyncio
import base64
import socket
import time

import aiohttp
import pytest

from engine.protocol import (
    AwarenessEntry,
    AwarenessUpdate,
    PermissionDeniedMessage,
    QueryAwareness,
    Saved,
    SyncStep1,
    SyncStep2,
    Update,
    decode_awareness,
    encode_awareness,
)
from harness.wire import connect, edit
from server.http.linger import LINGER_SECONDS
from tests.conftest import ServerProcess, StartServer


async def test_server_greets_with_its_state_vector_and_answers_step1(server: ServerProcess) -> None:
    async with connect(server.url, "greet") as client:
        first = await client.recv()
        assert isinstance(first, SyncStep1)
        await client.sync()


async def test_two_clients_converge_and_updates_are_relayed(server: ServerProcess) -> None:
    async with connect(server.url, "pair") as alice, connect(server.url, "pair") as bob:
        await alice.sync()
        await bob.sync()
        await alice.send(Update(edit(alice.doc, "hello ")))
        await bob.wait_text("hello ")
        await bob.send(Update(edit(bob.doc, "world")))
        await alice.wait_text("hello world")


async def test_late_joiner_gets_everything_in_step2(server: ServerProcess) -> None:
    async with connect(server.url, "late", ack=True) as writer:
        await writer.sync()
        for part in ("a", "b", "c"):
            await writer.send(Update(edit(writer.doc, part)))
        await writer.wait_saved(3)
    async with connect(server.url, "late") as reader:
        await reader.sync()
        assert reader.text() == "abc"


async def test_saved_ack_counts_update_messages_once_durable(server: ServerProcess) -> None:
    async with connect(server.url, "acks", ack=True) as client:
        await client.sync()
        await client.send(SyncStep2(b"\x00\x00"))  # a no-op still counts
        await client.send(Update(edit(client.doc, "x")))
        saved = await client.wait_saved(2)
        assert saved.count == 2 and saved.seq == 1


async def test_stock_clients_never_receive_the_saved_extension(server: ServerProcess) -> None:
    async with connect(server.url, "noack") as client, connect(server.url, "noack") as other:
        await client.sync()
        await other.sync()
        await client.send(Update(edit(client.doc, "x")))
        await other.wait_text("x")
        await client.send(QueryAwareness())
        await client.send(SyncStep1(b"\x00"))
        await client.wait_for(SyncStep2)
        assert not any(isinstance(m, Saved) for m in client.received)


async def test_malformed_frame_closes_only_that_client(server: ServerProcess) -> None:
    async with connect(server.url, "bad") as good, connect(server.url, "bad") as bad:
        await good.sync()
        await bad.sync()
        await bad.send_raw(b"\x00\x02\x50ab")  # length runs past the end
        assert await bad.wait_closed() == 4400
        assert "past the end" in bad.close_reason
        async with connect(server.url, "bad") as writer:
            await writer.sync()
            await writer.send(Update(edit(writer.doc, "still here")))
            await good.wait_text("still here")


def _masked_frame(opcode: int, payload: bytes) -> bytes:
    """A client frame as RFC 6455 wants it: masked (with a zero key, which leaves the
    payload as it is)."""
    assert len(payload) < 126
    return bytes((0x80 | opcode, 0x80 | len(payload))) + b"\x00\x00\x00\x00" + payload


class _RawClient:
    """A blocking WebSocket client that reads only when told to."""

    def __init__(self, url: str, room: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        key = base64.b64encode(b"0123456789abcdef").decode()
        self.sock.sendall(
            f"GET /rooms/{room} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(4096)
        assert head.startswith(b"HTTP/1.1 101"), head
        self.pending = head.split(b"\r\n\r\n", 1)[1]  # the server's SyncStep1 may follow

    def read_until_close_frame(self) -> bytes:
        """The close frame's payload (code and reason), read within the socket timeout."""
        while True:
            closes = [data for opcode, data in _server_frames(self.pending) if opcode == 0x8]
            if closes:
                return closes[0]
            chunk = self.sock.recv(65536)
            assert chunk, f"the server ended the stream without a close frame: {self.pending!r}"
            self.pending += chunk

    def ended_within(self, seconds: float) -> bool:
        """Whether the server ends the TCP stream within `seconds`."""
        self.sock.settimeout(seconds)
        try:
            while chunk := self.sock.recv(65536):
                self.pending += chunk
            return True
        except TimeoutError:
            return False
        except ConnectionResetError:
            return True


def _refuse_then_answer_late(url: str) -> tuple[bytes, bool, bool]:
    client = _RawClient(url, "late-answer")
    with client.sock:
        client.sock.sendall(_masked_frame(0x2, b"\x00\x02\x50ab"))  # runs past the end
        close = client.read_until_close_frame()
        ended_before_answer = client.ended_within(0.5)
        client.sock.sendall(_masked_frame(0x8, close[:2]))  # the client's answer
        ended_after_answer = client.ended_within(5.0)
    return close, ended_before_answer, ended_after_answer


async def test_a_refused_socket_stays_open_until_the_clients_close_frame(
    server: ServerProcess,
) -> None:
    """After a refusal the server reads on until the client's close frame. A server that
    ends the TCP stream at once races the client's answer: a client still sending (a
    fuzzer, any pipelining client) or answering the close finds its socket closing, and
    a stock aiohttp client then reports 1006 instead of the server's code."""
    close, ended_before, ended_after = await asyncio.to_thread(_refuse_then_answer_late, server.url)
    assert int.from_bytes(close[:2], "big") == 4400
    assert b"past the end" in close
    assert not ended_before, "the server closed before the client's close frame"
    assert ended_after, "the server kept the socket after the client's close frame"


def _refuse_and_never_answer(url: str) -> tuple[bytes, float]:
    client = _RawClient(url, "no-answer")
    with client.sock:
        client.sock.sendall(_masked_frame(0x2, b"\x00\x02\x50ab"))
        close = client.read_until_close_frame()
        started = time.monotonic()
        assert client.ended_within(LINGER_SECONDS + 5.0)
        return close, time.monotonic() - started


async def test_a_client_that_never_answers_a_close_is_cut_after_the_linger(
    server: ServerProcess,
) -> None:
    close, waited = await asyncio.to_thread(_refuse_and_never_answer, server.url)
    assert int.from_bytes(close[:2], "big") == 4400
    assert waited <= LINGER_SECONDS + 2.0


def _server_frames(data: bytes) -> list[tuple[int, bytes]]:
    """(opcode, payload) of the whole unmasked frames in `data` (payloads under 64 KiB)."""
    frames = []
    while len(data) >= 2:
        size, at = data[1] & 0x7F, 2
        if size == 126:
            size, at = int.from_bytes(data[2:4], "big"), 4
        if len(data) < at + size:
            break
        frames.append((data[0] & 0x0F, data[at : at + size]))
        data = data[at + size :]
    return frames


async def test_update_that_does_not_apply_is_rejected_and_not_stored(server: ServerProcess) -> None:
    async with connect(server.url, "garbage") as client:
        await client.sync()
        await client.send(Update(b"\x05\xff\xff\x01"))
        assert await client.wait_closed() == 4400
    async with aiohttp.ClientSession() as http:
        response = await http.get(f"{server.url}/v1/rooms/garbage/history")
        assert response.status == 404  # nothing was ever stored


async def test_text_frames_are_refused(server: ServerProcess) -> None:
    async with connect(server.url, "text") as client:
        await client.ws.send_str("hello")
        assert await client.wait_closed() == 4400


@pytest.mark.parametrize("room", ["a%2F..%2Fb", "a%2Fb", "x%00y", "a" * 200, "%20pad", "e%CC%81"])
async def test_bad_room_names_are_refused_with_a_reason(server: ServerProcess, room: str) -> None:
    async with connect(server.url, room) as client:
        assert await client.wait_closed() == 4400
        assert "room name" in client.close_reason


async def test_frame_over_the_limit_closes_with_1009(server_factory: StartServer) -> None:
    server = server_factory("--max-frame-bytes", "4096")
    async with connect(server.url, "big") as client, connect(server.url, "big") as other:
        await client.sync()
        await other.sync()
        await client.send(Update(b"\x00" * 10_000))
        assert await client.wait_closed() == 1009
        await other.send(Update(edit(other.doc, "fine")))
        await other.send(SyncStep1(bytes(other.doc.get_state())))
        await other.wait_for(SyncStep2)


async def test_update_over_the_size_limit_is_rejected_with_4413(
    server_factory: StartServer,
) -> None:
    server = server_factory("--max-update-bytes", "1000")
    async with connect(server.url, "quota") as client:
        await client.sync()
        await client.send(Update(edit(client.doc, "y" * 5000)))
        assert await client.wait_closed() == 4413


async def test_huge_state_vector_is_refused(server: ServerProcess) -> None:
    from engine.protocol import write_varuint

    vector = bytearray()
    write_varuint(vector, 200_000)
    for client_id in range(200_000):
        write_varuint(vector, client_id + 1)
        write_varuint(vector, 1)
    async with connect(server.url, "sv") as client:
        await client.send(SyncStep1(bytes(vector)))
        assert await client.wait_closed() == 4400


async def test_deeply_nested_update_is_rejected_not_crashing(server: ServerProcess) -> None:
    # An Item (ContentAny) at the root of "m" whose value nests 300,000 arrays deep.
    nested = b"\x75\x01" * 300_000 + b"\x7e"
    update = b"\x01\x01\x07\x00" + b"\x08" + b"\x01\x01m" + b"\x01" + nested + b"\x00"
    async with connect(server.url, "deep") as client:
        await client.sync()
        await client.send(Update(update))
        assert await client.wait_closed() == 4400
        assert "nested" in client.close_reason
    async with connect(server.url, "deep") as again:
        await again.sync()


async def test_awareness_is_relayed_and_removed_when_the_client_leaves(
    server: ServerProcess,
) -> None:
    async with connect(server.url, "aw") as watcher:
        await watcher.sync()
        async with connect(server.url, "aw") as alice:
            await alice.sync()
            state = AwarenessEntry(4242, 1, '{"user":{"name":"alice"}}')
            await alice.send(AwarenessUpdate(encode_awareness([state])))
            seen = await watcher.wait_for(AwarenessUpdate)
            assert isinstance(seen, AwarenessUpdate)
            assert decode_awareness(seen.payload) == [state]
        gone = await watcher.wait_for(AwarenessUpdate)
        assert isinstance(gone, AwarenessUpdate)
        [entry] = decode_awareness(gone.payload)
        assert entry.client_id == 4242 and entry.removed


async def test_a_client_cannot_set_or_remove_someone_elses_presence(server: ServerProcess) -> None:
    async with connect(server.url, "spoof") as alice, connect(server.url, "spoof") as mallory:
        await alice.sync()
        await mallory.sync()
        await alice.send(
            AwarenessUpdate(encode_awareness([AwarenessEntry(1, 1, '{"user":{"name":"alice"}}')]))
        )
        await mallory.wait_for(AwarenessUpdate)
        await mallory.send(
            AwarenessUpdate(
                encode_awareness(
                    [AwarenessEntry(1, 5, "null"), AwarenessEntry(2, 1, '{"user":"mallory"}')]
                )
            )
        )
        relayed: list[AwarenessEntry] = []
        while not any(e.client_id == 2 for e in relayed):
            seen = await alice.wait_for(AwarenessUpdate)
            assert isinstance(seen, AwarenessUpdate)
            relayed += decode_awareness(seen.payload)
        assert not any(e.client_id == 1 and e.removed for e in relayed)
        async with connect(server.url, "spoof") as late:
            await late.send(QueryAwareness())
            states = await late.wait_for(AwarenessUpdate)
            assert isinstance(states, AwarenessUpdate)
            assert {e.client_id: e.removed for e in decode_awareness(states.payload)} == {
                1: False,
                2: False,
            }


async def test_oversized_awareness_is_dropped_with_a_reason(server: ServerProcess) -> None:
    async with connect(server.url, "bigaw") as client:
        await client.sync()
        huge = AwarenessEntry(9, 1, '"' + "x" * 100_000 + '"')
        await client.send(AwarenessUpdate(encode_awareness([huge])))
        denied = await client.wait_for(PermissionDeniedMessage)
        assert isinstance(denied, PermissionDeniedMessage)
        assert "awareness" in denied.reason


async def test_document_over_its_size_limit_rejects_the_update_with_4413(
    server_factory: StartServer,
) -> None:
    server = server_factory("--max-doc-bytes", "300")
    async with connect(server.url, "full", ack=True) as client:
        await client.sync()
        await client.send(Update(edit(client.doc, "a" * 100)))
        await client.wait_saved(1)
        await client.send(Update(edit(client.doc, "b" * 250)))
        assert await client.wait_closed() == 4413
        assert "limit" in client.close_reason
    async with connect(server.url, "full") as reader:
        await reader.sync()
        assert reader.text() == "a" * 100
