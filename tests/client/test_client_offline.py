"""The SDK with no server at all: local durability, status, and waiting that ends."""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from pycrdt import Array

from engine.client import Backoff, Client, ClientClosed, Status, connect
from engine.errors import RoomNameError


@pytest.fixture
def dead_url() -> Iterator[str]:
    """A loopback port that is bound but not listening: every connect is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"ws://127.0.0.1:{sock.getsockname()[1]}/rooms"


FAST = Backoff(initial=0.01, maximum=0.05)


async def test_offline_edits_survive_a_restart_of_the_client(dead_url: str, tmp_path: Path) -> None:
    async with connect(dead_url, "lobby", store_path=tmp_path, backoff=FAST) as client:
        client.doc.get("items", type=Array).extend(["one", "two"])

    async with connect(dead_url, "lobby", store_path=tmp_path, backoff=FAST) as again:
        assert again.doc.get("items", type=Array).to_py() == ["one", "two"]


async def test_rooms_in_one_store_stay_apart(dead_url: str, tmp_path: Path) -> None:
    async with connect(dead_url, "a", store_path=tmp_path, backoff=FAST) as client:
        client.doc.get("items", type=Array).append("in a")
    async with connect(dead_url, "b", store_path=tmp_path, backoff=FAST) as other:
        assert other.doc.get("items", type=Array).to_py() == []


async def test_status_goes_connecting_then_offline_while_the_server_is_unreachable(
    dead_url: str, tmp_path: Path
) -> None:
    seen: list[Status] = []
    offline = asyncio.Event()

    def record(status: Status) -> None:
        seen.append(status)
        if status == "offline":
            offline.set()

    client = Client(dead_url, "lobby", store_path=tmp_path, backoff=FAST)
    client.on_status(record)
    async with client:
        await asyncio.wait_for(offline.wait(), timeout=5)
    assert seen[:2] == ["connecting", "offline"]


async def test_saved_raises_when_the_client_closes_first(dead_url: str, tmp_path: Path) -> None:
    client = connect(dead_url, "lobby", store_path=tmp_path, backoff=FAST)
    await client.start()
    client.doc.get("items", type=Array).append("never confirmed")
    waiter = asyncio.create_task(client.saved())
    await client.close()
    with pytest.raises(ClientClosed):
        await asyncio.wait_for(waiter, timeout=5)


async def test_edits_after_close_raise_instead_of_vanishing(dead_url: str, tmp_path: Path) -> None:
    async with connect(dead_url, "lobby", store_path=tmp_path, backoff=FAST) as client:
        pass
    with pytest.raises(ExceptionGroup) as caught:
        client.doc.get("items", type=Array).append("late")
    assert caught.group_contains(ClientClosed)


def test_backoff_grows_is_capped_and_jittered() -> None:
    backoff = Backoff(initial=1.0, maximum=8.0)
    rng = random.Random(7)
    delays = [backoff.delay(n, rng) for n in range(10)]
    for attempt, delay in enumerate(delays):
        ceiling = min(8.0, 2.0**attempt)
        assert ceiling / 2 <= delay <= ceiling
    assert len(set(delays[4:])) > 1  # capped, yet not all the same


def test_room_names_are_checked_before_anything_is_opened(tmp_path: Path) -> None:
    with pytest.raises(RoomNameError):
        Client("ws://127.0.0.1:1/rooms", "a/b", store_path=tmp_path / "never")
    assert not (tmp_path / "never").exists()
