"""Big rooms: the size limit refuses cleanly, and a large first sync survives clients that
leave or stop reading half-way (speed is measured by the BIG benchmark, not here)."""

from __future__ import annotations

import asyncio
import base64
import os
from pathlib import Path
from typing import Any

import aiohttp
from pycrdt import Doc

from engine.protocol import SyncStep1, SyncStep2, Update, encode
from harness.wire import connect, durable_text, edit
from tests.conftest import ServerProcess, StartServer

PIECE = 1_000_000  # characters per update: one log entry each


async def _fill(server: ServerProcess, room: str, pieces: int) -> Doc[Any]:
    """Write `pieces` updates of PIECE characters and wait until all are durable."""
    author: Doc[Any] = Doc()
    async with connect(server.url, room, ack=True) as writer:
        await writer.sync()
        for i in range(pieces):
            await writer.send(Update(edit(author, chr(ord("a") + i) * PIECE)))
        await writer.wait_saved(pieces, timeout=60)
    return author


async def _get_json(url: str) -> Any:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def _metric(server: ServerProcess, name: str) -> float:
    async with aiohttp.ClientSession() as http, http.get(f"{server.url}/metrics") as response:
        for line in (await response.text()).splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
    raise AssertionError(f"no metric {name}")


async def _settle(check: Any, timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.05)


async def test_a_room_refuses_the_update_that_crosses_its_size_limit_and_stores_none_of_it(
    server_factory: StartServer, tmp_path: Path
) -> None:
    data = tmp_path / "limit"
    server = server_factory("--max-doc-bytes", str(int(2.5 * PIECE)), data_dir=data)
    author = await _fill(server, "full", 2)
    async with connect(server.url, "full", ack=True) as writer:
        await writer.sync()
        await writer.send(Update(edit(author, "c" * PIECE)))
        assert await writer.wait_closed(timeout=30) == 4413
        assert "limit" in writer.close_reason
    history = await _get_json(f"{server.url}/v1/rooms/full/history?limit=10")
    assert [entry["seq"] for entry in history["entries"]] == [1, 2]
    assert await durable_text(server.url, "full") == "a" * PIECE + "b" * PIECE

    # Cold, and under a limit the room is already past: it still loads and syncs whole
    # (what is stored is the room), while growing it further is refused.
    server.stop()
    smaller = server_factory("--max-doc-bytes", str(PIECE), data_dir=data)
    async with connect(smaller.url, "full", ack=True) as reader:
        await reader.sync()
        assert reader.text() == "a" * PIECE + "b" * PIECE
        await reader.send(Update(edit(reader.doc, "!")))
        assert await reader.wait_closed(timeout=30) == 4413
    history = await _get_json(f"{smaller.url}/v1/rooms/full/history?limit=10")
    assert len(history["entries"]) == 2


async def _drop_during_first_sync(server: ServerProcess, room: str) -> None:
    """Open a WebSocket by hand, ask for everything, read a little, then reset the TCP
    connection without a close frame (a tab closed half-way through a large sync)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET /rooms/{room} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    status = await reader.readuntil(b"\r\n\r\n")
    assert status.startswith(b"HTTP/1.1 101"), status
    payload = encode(SyncStep1(b"\x00"))
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    writer.write(bytes((0x82, 0x80 | len(payload))) + mask + masked)
    await writer.drain()
    await reader.readexactly(64 * 1024)  # the sync is under way
    writer.transport.abort()


async def test_a_client_that_leaves_mid_way_through_a_big_first_sync_leaves_nothing_behind(
    server_factory: StartServer, tmp_path: Path
) -> None:
    """Also: one that stops reading for a while is not cut off as a slow consumer, although
    the room is several times the send buffer limit (the document is the server's own,
    shared bytes, not a backlog the client caused)."""
    data = tmp_path / "big"
    server = server_factory(data_dir=data)
    await _fill(server, "big", 6)
    server.stop()
    server = server_factory(
        "--send-buffer-bytes", str(PIECE), "--idle-unload", "0.5", data_dir=data
    )
    expected = "".join(chr(ord("a") + i) * PIECE for i in range(6))

    for _ in range(3):
        await _drop_during_first_sync(server, "big")

    async with connect(server.url, "big") as slow:
        await slow.send(SyncStep1(b"\x00"))
        await asyncio.sleep(1.0)  # reads nothing meanwhile: the server's buffer fills up
        await slow.wait_for(SyncStep2, timeout=30)
        assert slow.close_code is None
        assert slow.text() == expected

    async def all_gone() -> bool:
        health = await _get_json(f"{server.url}/healthz")
        return bool(health["connections"] == 0 and health["rooms_loaded"] == 0)

    await _settle(all_gone)
    assert await _metric(server, "performer_connections") == 0
    async with connect(server.url, "big") as fresh:
        await fresh.sync()
        assert fresh.text() == expected
