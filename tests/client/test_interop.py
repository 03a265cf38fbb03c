"""The SDK and a stock Yjs client (Node, y-websocket) in one room through the real server."""

from __future__ import annotations

import asyncio
import json
from asyncio.subprocess import Process
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Array, Awareness

from engine.client import connect
from engine.client.chat import new_message, toggle_reaction
from tests.client.conftest import ROOT, LiveServer
from tests.client.helpers import DEADLINE, wait_for_doc
from tests.conftest import require_node

NODE_MODULES = ROOT / "tests" / "interop" / "node_modules"
PEER = Path(__file__).parent / "js" / "chat_peer.mjs"


@pytest.fixture(autouse=True)
def node_packages() -> None:
    require_node("y-websocket")  # fails (never skips) when the setup is broken


PRESENCE_DEADLINE = 5.0  # presence is relayed within a flush window, far below this


async def wait_for_peer(awareness: Awareness, name: str) -> dict[str, Any]:
    """The awareness state of the peer called `name`, once it is there."""
    changed = asyncio.Event()
    subscription = awareness.observe(lambda _topic, _change: changed.set())
    try:
        async with asyncio.timeout(PRESENCE_DEADLINE):
            while True:
                changed.clear()
                for state in awareness.states.values():
                    if state.get("user", {}).get("name") == name:
                        return state
                await changed.wait()
    finally:
        awareness.unobserve(subscription)


async def start_node_peer(url: str, room: str, text: str, wait_text: str) -> Process:
    """The Node peer posts `text` as "node", then waits for `wait_text` and for "py"."""
    return await asyncio.create_subprocess_exec(
        "node",
        str(PEER),
        url,
        room,
        "node",
        text,
        wait_text,
        "py",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def node_result(node: Process) -> dict[str, Any]:
    out, err = await asyncio.wait_for(node.communicate(), timeout=30)
    assert node.returncode == 0, err.decode()
    result: dict[str, Any] = json.loads(out)
    return result


def texts(messages: Array[Any]) -> list[str]:
    return [m["text"] for m in messages.to_py() or []]


async def test_sdk_and_yjs_client_converge_on_chat_messages(
    live_server: LiveServer, tmp_path: Path
) -> None:
    async with connect(live_server.ws_url, "mixed", store_path=tmp_path) as client:
        await asyncio.wait_for(client.synced(), DEADLINE)
        node = await start_node_peer(live_server.ws_url, "mixed", "from node", "from python")
        messages = client.doc.get("messages", type=Array)
        await wait_for_doc(client.doc, lambda: "from node" in texts(messages))
        client.awareness.set_local_state({"user": {"name": "py", "color": "#f00"}, "typing": False})

        with client.doc.transaction():  # one update: the peer stops once it sees the text
            messages.append(new_message("py", "from python"))
            toggle_reaction(messages[0], "👍", "py")
        seen_by_node = await node_result(node)
        await asyncio.wait_for(client.saved(), DEADLINE)
        ours = messages.to_py() or []

    assert sorted(m["text"] for m in seen_by_node["messages"]) == sorted(texts(messages))
    assert [m["id"] for m in seen_by_node["messages"]] == [m["id"] for m in ours]
    from_python = next(m for m in seen_by_node["messages"] if m["text"] == "from python")
    assert from_python["user"] == "py"
    assert isinstance(from_python["ts"], int | float)
    assert from_python["reactions"] == {}
    from_node = next(m for m in seen_by_node["messages"] if m["text"] == "from node")
    assert from_node["reactions"] == {"👍\tpy": True}


async def test_presence_flows_both_ways_when_a_yjs_client_joins_a_busy_room(
    live_server: LiveServer, tmp_path: Path
) -> None:
    async with connect(live_server.ws_url, "busy", store_path=tmp_path) as client:
        client.awareness.set_local_state({"user": {"name": "py", "color": "#f00"}, "typing": False})
        await asyncio.wait_for(client.synced(), DEADLINE)
        node = await start_node_peer(live_server.ws_url, "busy", "hi", "hi")
        try:
            node_state = await wait_for_peer(client.awareness, "node")
        finally:
            seen_by_node = await node_result(node)

    assert node_state["typing"] is True
    assert "py" in seen_by_node["peers"]
