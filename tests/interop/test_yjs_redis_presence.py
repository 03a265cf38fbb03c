"""Presence across server processes: stock y-websocket clients (`js/awareness.mjs`) on two
`performer serve --redis` processes sharing one real redis-server.

The Node side waits at most 10 s for a peer's state, less than the 15 s after which
y-protocols renews a state by itself, so what these tests see is the servers relaying it.
"""

from __future__ import annotations

import asyncio

from tests.interop.conftest import StartNode, StartServer
from tests.interop.processes import NodeProcess, ServerProcess
from tests.redis_process import RedisProcess

LINE_DEADLINE = 20.0
CLIENT_DEADLINE = 45.0
STATE = {"user": {"name": "Zoë 🎉", "color": "#e91e63"}, "typing": True}


async def two_processes(
    redis_server: RedisProcess, start_server: StartServer
) -> tuple[ServerProcess, ServerProcess]:
    """Two freshly started processes on one Redis (started together, as a deploy does)."""
    one, two = await asyncio.gather(
        start_server(None, "--redis", redis_server.url),
        start_server(None, "--redis", redis_server.url),
    )
    return one, two


async def presence_client(
    start_node: StartNode, server: ServerProcess, room: str, role: str, name: str, **more: str
) -> NodeProcess:
    """`js/awareness.mjs` in one of its roles, on `server`."""
    return await start_node(
        "awareness.mjs", url=server.ws_url, room=room, role=role, name=name, **more
    )


async def test_clients_on_two_processes_see_each_others_presence(
    redis_server: RedisProcess, start_server: StartServer, start_node: StartNode
) -> None:
    one, two = await two_processes(redis_server, start_server)
    room = "presence-pair"
    ann = await presence_client(start_node, one, room, "peer", "ann", peer="bob")
    bob = await presence_client(start_node, two, room, "peer", "bob", peer="ann")
    ann_id = (await ann.expect("ready", LINE_DEADLINE))["client_id"]
    bob_id = (await bob.expect("ready", LINE_DEADLINE))["client_id"]
    ann_saw = await ann.expect("seen", LINE_DEADLINE)
    bob_saw = await bob.expect("seen", LINE_DEADLINE)
    assert ann_saw["client_id"] == bob_id
    assert bob_saw["client_id"] == ann_id
    assert ann_saw["state"] == {**STATE, "user": {"name": "bob", "color": "#e91e63"}}
    assert bob_saw["state"] == {**STATE, "user": {"name": "ann", "color": "#e91e63"}}


async def test_a_client_joining_later_on_another_process_gets_the_current_state_and_its_removal(
    redis_server: RedisProcess, start_server: StartServer, start_node: StartNode
) -> None:
    """The holder's state was relayed before process two had the room loaded at all: the
    watcher must still get it on joining (and then see the holder's goodbye)."""
    one, two = await two_processes(redis_server, start_server)
    room = "presence-late"
    holder = await presence_client(start_node, one, room, "holder", "Zoë 🎉")
    ready = await holder.expect("ready", LINE_DEADLINE)
    watcher = await presence_client(start_node, two, room, "watcher", "Zoë 🎉")
    seen = await watcher.expect("seen", LINE_DEADLINE)
    assert seen == {"event": "seen", "client_id": ready["client_id"], "state": STATE}
    await holder.send("disconnect")
    await holder.expect("closed", LINE_DEADLINE)
    removed = await watcher.result(CLIENT_DEADLINE)
    assert removed == {"event": "removed", "client_id": ready["client_id"]}


async def test_a_killed_client_presence_is_removed_on_the_other_process(
    redis_server: RedisProcess, start_server: StartServer, start_node: StartNode
) -> None:
    """No goodbye from the client: its own process removes the state, and that removal
    must reach the other process's clients too."""
    one, two = await two_processes(redis_server, start_server)
    room = "presence-killed"
    watcher = await presence_client(start_node, two, room, "watcher", "Zoë 🎉")
    holder = await presence_client(start_node, one, room, "holder", "Zoë 🎉")
    ready = await holder.expect("ready", LINE_DEADLINE)
    seen = await watcher.expect("seen", LINE_DEADLINE)
    assert seen["client_id"] == ready["client_id"]
    await holder.kill()
    removed = await watcher.result(CLIENT_DEADLINE)
    assert removed == {"event": "removed", "client_id": ready["client_id"]}
