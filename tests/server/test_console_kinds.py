"""The console's "who is connected" names each connection's kind: a Hocuspocus provider's
document, the Python SDK's socket (aiohttp), each in the same room."""

from __future__ import annotations

import asyncio

import aiohttp

from harness.wire import connect
from tests.conftest import ServerProcess
from tests.server.test_hocuspocus_wire import open_socket

WAIT = 20.0


async def test_connections_name_the_client_kind(server: ServerProcess) -> None:
    async with aiohttp.ClientSession() as session, connect(server.url, "shared") as wire:
        await wire.sync()
        socket = await open_socket(server, session)
        await socket.join("shared")
        async with asyncio.timeout(WAIT):
            while True:
                async with session.get(f"{server.url}/v1/rooms/shared/connections") as response:
                    assert response.status == 200
                    kinds = sorted(c["kind"] for c in (await response.json())["connections"])
                if len(kinds) == 2:
                    break
                await asyncio.sleep(0.05)
        assert kinds == ["hocuspocus", "python-sdk"]
        await socket.ws.close()
