"""A large room's first sync through the Python client: it completes, and the status
says "syncing" (with the bytes received so far) until it does, never "connecting"."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pycrdt import Text

from engine.client import Backoff, Status, connect
from engine.protocol import Update
from harness.wire import connect as wire_connect
from harness.wire import edit
from tests.client.conftest import StartServer
from tests.client.helpers import DEADLINE

FAST = Backoff(initial=0.05, maximum=0.5)
PIECE = 1_000_000


async def test_first_sync_of_a_large_room_shows_progress_and_completes(
    start_server: StartServer, tmp_path: Path
) -> None:
    first = start_server(data_dir=tmp_path / "data")
    async with wire_connect(first.url, "large", ack=True) as writer:
        await writer.sync()
        for i in range(4):
            await writer.send(Update(edit(writer.doc, str(i) * PIECE)))
        await writer.wait_saved(4, timeout=60)
    first.stop()
    live_server = start_server(data_dir=tmp_path / "data")  # the room is cold

    seen: list[tuple[Status, int]] = []
    async with connect(live_server.ws_url, "large", store_path=None, backoff=FAST) as client:
        client.on_status(lambda status: seen.append((status, client.received_bytes)))
        await asyncio.wait_for(client.synced(), DEADLINE)
        assert len(client.doc.get("t", type=Text)) == 4 * PIECE
        assert client.received_bytes >= 4 * PIECE
    states = [status for status, _ in seen]
    assert states[:2] == ["connecting", "syncing"], states
    done = next(i for i, status in enumerate(states) if status in ("synced", "saved"))
    assert "connecting" not in states[2:done], states
    syncing = [received for status, received in seen if status == "syncing"]
    assert syncing and syncing[0] < 4 * PIECE, seen
