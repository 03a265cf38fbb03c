"""Stock Yjs clients (npm `yjs` + `y-websocket` over `ws`) against the real server process.

Each Node script in `js/` prints JSON; these tests start them, bound every wait, and check
what the clients and the server's REST state agree on.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import aiohttp
from pycrdt import Array, Doc, Map, Text

from engine.yjs import decode_state_vector
from tests.interop.conftest import StartNode, StartServer
from tests.interop.processes import NodeProcess, ServerProcess

CLIENT_DEADLINE = 45.0
LINE_DEADLINE = 20.0


async def fetch_state(server: ServerProcess, room: str) -> bytes:
    """`GET /v1/rooms/{room}/state`: the room as one Yjs update."""
    timeout = aiohttp.ClientTimeout(total=LINE_DEADLINE)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(f"{server.url}/v1/rooms/{room}/state") as response,
    ):
        assert response.status == 200, await response.text()
        assert response.content_type == "application/octet-stream"
        return await response.read()


def state_json(update: bytes) -> dict[str, Any]:
    """The roots the Node scripts use (`text`, `list`, `map`), as their `toJSON()` gives."""
    doc: Doc[Any] = Doc()
    doc.apply_update(update)
    return {
        "text": str(doc.get("text", type=Text)),
        "list": doc.get("list", type=Array).to_py(),
        "map": doc.get("map", type=Map).to_py(),
    }


def state_vector_of(update: bytes) -> dict[int, int]:
    doc: Doc[Any] = Doc()
    doc.apply_update(update)
    return decode_state_vector(bytes(doc.get_state()))


async def test_concurrent_editors_converge_with_each_other_and_the_server(
    server: ServerProcess, start_node: StartNode
) -> None:
    clients, edits, seed = 5, 20, random.randrange(1000)
    editors = [
        await start_node(
            "converge.mjs",
            url=server.ws_url,
            room="converge",
            index=index,
            clients=clients,
            edits=edits,
            seed=seed,
        )
        for index in range(clients)
    ]
    results = await asyncio.gather(*(e.result(CLIENT_DEADLINE) for e in editors))
    first = results[0]
    for result in results[1:]:
        assert result["json"] == first["json"], f"seed {seed}"
        assert result["state_vector"] == first["state_vector"], f"seed {seed}"
    assert len({r["client_id"] for r in results}) == clients
    assert len(first["json"]["list"]) == clients * edits
    assert first["json"]["map"]["contested"] in range(clients)
    state = await fetch_state(server, "converge")
    assert state_json(state) == first["json"]
    clocks = decode_state_vector(bytes.fromhex(first["state_vector"]))
    assert set(clocks) == {r["client_id"] for r in results}
    assert state_vector_of(state) == clocks


async def test_an_offline_client_and_an_online_client_both_end_with_the_union(
    server: ServerProcess, start_node: StartNode
) -> None:
    scenario = await start_node("offline.mjs", url=server.ws_url, room="offline")
    result = await scenario.result(CLIENT_DEADLINE)
    during = result["while_a_offline"]["json"]
    assert during["map"].get("b") == "online 🌐"
    assert "a" not in during["map"], "A's edit went out while A was disconnected"
    a, b, c = result["a"], result["b"], result["c"]
    assert a["json"] == b["json"] == c["json"]
    assert a["state_vector"] == b["state_vector"] == c["state_vector"]
    assert sorted(a["json"]["list"]) == ["from A while offline", "from B"]
    assert a["json"]["map"] == {"base": True, "a": "offline ✈", "b": "online 🌐"}
    assert "B online: " in a["json"]["text"] and " +A offline" in a["json"]["text"]
    dump = await start_node("dump.mjs", url=server.ws_url, room="offline")
    assert (await dump.result(CLIENT_DEADLINE))["json"] == a["json"]
    assert state_json(await fetch_state(server, "offline")) == a["json"]


async def _presence_pair(
    server: ServerProcess, start_node: StartNode, room: str, **watcher_options: object
) -> tuple[NodeProcess, NodeProcess, int]:
    """A holder with a presence state and a watcher that has seen it."""
    holder = await start_node(
        "awareness.mjs", url=server.ws_url, room=room, role="holder", name="Zoë 🎉"
    )
    ready = await holder.expect("ready", LINE_DEADLINE)
    watcher = await start_node(
        "awareness.mjs",
        url=server.ws_url,
        room=room,
        role="watcher",
        name="Zoë 🎉",
        **watcher_options,
    )
    seen = await watcher.expect("seen", LINE_DEADLINE)
    assert seen["client_id"] == ready["client_id"]
    assert seen["state"] == {"user": {"name": "Zoë 🎉", "color": "#e91e63"}, "typing": True}
    return holder, watcher, ready["client_id"]


async def test_a_peer_sees_presence_removed_when_the_holder_disconnects(
    server: ServerProcess, start_node: StartNode
) -> None:
    holder, watcher, client_id = await _presence_pair(server, start_node, "presence-goodbye")
    await holder.send("disconnect")
    await holder.expect("closed", LINE_DEADLINE)
    removed = await watcher.result(CLIENT_DEADLINE)
    assert removed == {"event": "removed", "client_id": client_id}


async def test_a_bare_websocket_close_removes_the_holder_presence(
    server: ServerProcess, start_node: StartNode
) -> None:
    """No y-websocket goodbye message, only a close frame: the server must clear the state."""
    holder, watcher, client_id = await _presence_pair(server, start_node, "presence-close")
    await holder.send("close-socket")
    await holder.expect("closed", LINE_DEADLINE)
    removed = await watcher.result(CLIENT_DEADLINE)
    assert removed == {"event": "removed", "client_id": client_id}


async def test_a_killed_client_presence_is_removed_for_its_peers(
    server: ServerProcess, start_node: StartNode
) -> None:
    holder, watcher, client_id = await _presence_pair(server, start_node, "presence-killed")
    await holder.kill()
    removed = await watcher.result(CLIENT_DEADLINE)
    assert removed == {"event": "removed", "client_id": client_id}


async def test_a_peer_sees_the_holder_again_after_its_connection_drops_and_comes_back(
    server: ServerProcess, start_node: StartNode
) -> None:
    """A network drop: the provider reconnects by itself and then changes its state once;
    with the stock @y/websocket-server the peer shows it right away.

    Regression: the peer's y-websocket echoed the departed client's removal and the server
    let the echo claim that client id, dropping the client's later states; and removals
    went out at clock+1, so peers ignored the client's next state (same clock).
    """
    holder, watcher, client_id = await _presence_pair(
        server, start_node, "presence-drop", reappear=1
    )
    await holder.send("drop")
    await holder.expect("reconnected", LINE_DEADLINE)
    await watcher.expect("removed", LINE_DEADLINE)
    await holder.send("stop-typing")
    await holder.expect("updated", LINE_DEADLINE)
    again = await watcher.result(CLIENT_DEADLINE)
    assert again == {
        "event": "seen again",
        "client_id": client_id,
        "state": {"user": {"name": "Zoë 🎉", "color": "#e91e63"}, "typing": False},
    }


async def test_every_edit_an_observer_saw_survives_a_server_sigkill(
    start_server: StartServer, start_node: StartNode
) -> None:
    """Broadcasts leave the server only after the commit, so whatever a peer received must
    be on disk however abruptly the server dies."""
    rng = random.Random()
    seed = rng.randrange(10**6)
    rng.seed(seed)
    server = await start_server()
    room = "durable"
    observer = await start_node("observer.mjs", url=server.ws_url, room=room)
    await observer.expect("ready", LINE_DEADLINE)
    writers = [
        await start_node("writer.mjs", url=server.ws_url, room=room, name=f"w{i}") for i in range(2)
    ]
    for writer in writers:
        await writer.expect("ready", LINE_DEADLINE)
    target = rng.randrange(20, 300)
    seen: list[str] = []
    while len(seen) < target:
        line = await observer.expect("seen", LINE_DEADLINE)
        seen.extend(line["items"])
    await server.kill()
    for process in (*writers, observer):
        await process.kill()
    seen.extend(
        item for line in await observer.rest_of_output(LINE_DEADLINE) for item in line["items"]
    )

    restarted = await start_server(server.data_dir)
    stored = state_json(await fetch_state(restarted, room))["list"]
    missing = sorted(set(seen) - set(stored))
    assert missing == [], f"seed {seed}: {len(missing)} of {len(seen)} seen items lost"
    assert len(stored) == len(set(stored)), f"seed {seed}: duplicated items after restart"
    dump = await start_node("dump.mjs", url=restarted.ws_url, room=room)
    assert (await dump.result(CLIENT_DEADLINE))["json"]["list"] == stored
