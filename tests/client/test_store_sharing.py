"""Where clients keep their replicas: one store for many rooms and servers, or memory only."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pycrdt import Array

from engine.client import Backoff, ReplicaInUse, connect, edit_and_save
from engine.client.shared_kv import open_store_paths
from tests.client.conftest import LiveServer, StartServer
from tests.client.helpers import DEADLINE, items, server_doc

FAST = Backoff(initial=0.05, maximum=0.5)
ROOMS = 50


def listing(directory: Path) -> list[Path]:
    return sorted(directory.iterdir())


@pytest.fixture
def empty_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory, to see that nothing is written to it."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


@pytest.fixture
def dead_url() -> Iterator[str]:
    """A loopback port that is bound but not listening: every connect is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"ws://127.0.0.1:{sock.getsockname()[1]}/rooms"


async def test_fifty_rooms_sync_at_once_from_one_store_in_one_process(
    live_server: LiveServer, tmp_path: Path
) -> None:
    """A second `connect` on one store_path used to fail: LMDB environment already open."""
    store = tmp_path / "store"
    rooms = [f"room-{n}" for n in range(ROOMS)]
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                connect(live_server.ws_url, room, store_path=store, backoff=FAST)
            )
            for room in rooms
        ]
        for room, client in zip(rooms, clients, strict=True):
            client.doc.get("items", type=Array).append(f"edit in {room}")
        async with asyncio.timeout(2 * DEADLINE):
            await asyncio.gather(*(client.saved() for client in clients))
        assert open_store_paths() == [store.resolve()]

    assert open_store_paths() == []  # the last client to close closed the store
    for room in rooms:
        assert items(await server_doc(live_server.http_url, room)) == [f"edit in {room}"]


async def test_clients_sharing_a_store_close_independently(
    live_server: LiveServer, tmp_path: Path
) -> None:
    url = live_server.ws_url
    async with connect(url, "stays", store_path=tmp_path, backoff=FAST) as stays:
        async with connect(url, "leaves", store_path=tmp_path, backoff=FAST) as leaves:
            leaves.doc.get("items", type=Array).append("bye")
            await asyncio.wait_for(leaves.saved(), DEADLINE)
        stays.doc.get("items", type=Array).append("after the other closed")
        await asyncio.wait_for(stays.saved(), DEADLINE)

    async with connect(url, "stays", store_path=tmp_path, backoff=FAST) as again:
        assert items(again.doc) == ["after the other closed"]


async def test_one_store_keeps_the_same_room_on_two_servers_apart(
    start_server: StartServer, tmp_path: Path
) -> None:
    """The replica used to be keyed by room alone: B received A's content."""
    server_a, server_b = start_server(), start_server()
    store = tmp_path / "store"
    async with connect(server_a.ws_url, "x", store_path=store, backoff=FAST) as on_a:
        on_a.doc.get("items", type=Array).append("on A")
        await asyncio.wait_for(on_a.saved(), DEADLINE)

    async with connect(server_b.ws_url, "x", store_path=store, backoff=FAST) as on_b:
        await asyncio.wait_for(on_b.synced(), DEADLINE)
        assert items(on_b.doc) == []
        on_b.doc.get("items", type=Array).append("on B")
        await asyncio.wait_for(on_b.saved(), DEADLINE)

    assert items(await server_doc(server_b.http_url, "x")) == ["on B"]
    assert items(await server_doc(server_a.http_url, "x")) == ["on A"]
    server_a.stop()
    async with connect(server_a.ws_url, "x", store_path=store, backoff=FAST) as offline:
        assert items(offline.doc) == ["on A"]  # A's replica is still there, readable offline


async def test_without_a_store_path_the_replica_lives_in_memory_only(
    live_server: LiveServer, empty_cwd: Path
) -> None:
    async with connect(live_server.ws_url, "mem", store_path=None, backoff=FAST) as client:
        client.doc.get("items", type=Array).append("from memory")
        await asyncio.wait_for(client.saved(), DEADLINE)
        assert client.status == "saved"
        assert open_store_paths() == []

    assert listing(empty_cwd) == []  # nothing written here (nor to ./client-data)
    assert items(await server_doc(live_server.http_url, "mem")) == ["from memory"]


async def test_offline_edits_of_a_memory_only_client_end_with_it(
    dead_url: str, empty_cwd: Path
) -> None:
    async with connect(dead_url, "mem", store_path=None, backoff=FAST) as client:
        client.doc.get("items", type=Array).append("never sent")
    async with connect(dead_url, "mem", store_path=None, backoff=FAST) as again:
        assert items(again.doc) == []
    assert listing(empty_cwd) == []


async def test_memory_only_clients_of_one_room_may_be_open_together(dead_url: str) -> None:
    async with (
        connect(dead_url, "twice", store_path=None, backoff=FAST),
        connect(dead_url, "twice", store_path=None, backoff=FAST),
    ):
        pass


async def test_a_second_open_client_for_one_replica_is_refused(
    dead_url: str, tmp_path: Path
) -> None:
    async with connect(dead_url, "once", store_path=tmp_path, backoff=FAST):
        with pytest.raises(ReplicaInUse):
            connect(dead_url, "once", store_path=tmp_path, backoff=FAST)
        async with connect(dead_url, "other", store_path=tmp_path, backoff=FAST):
            pass
    assert open_store_paths() == []


def test_scripts_on_several_threads_share_one_store(
    live_server: LiveServer, tmp_path: Path
) -> None:
    """Each thread runs its own event loop; the store is opened and closed under a lock."""
    rooms = [f"thread-{n}" for n in range(8)]

    def run(room: str) -> None:
        edit_and_save(
            live_server.ws_url,
            room,
            lambda doc: doc.get("items", type=Array).append(room),
            store_path=tmp_path / "store",
            timeout=DEADLINE,
        )

    with ThreadPoolExecutor(max_workers=len(rooms)) as pool:
        list(pool.map(run, rooms, timeout=4 * DEADLINE))

    assert open_store_paths() == []
    for room in rooms:
        assert items(asyncio.run(server_doc(live_server.http_url, room))) == [room]
