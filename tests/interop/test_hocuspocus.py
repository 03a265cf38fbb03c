"""`@hocuspocus/provider` 3.x (the npm package, over `ws`) against `performer serve`:
the provider works unchanged except for the URL, many documents share one socket, and
its "synced" (no unsynced changes) means the edits are on disk."""

from __future__ import annotations

from tests.interop.conftest import StartNode
from tests.interop.hocuspocus_driver import Provider
from tests.interop.processes import ServerProcess
from tests.interop.test_yjs_clients import fetch_state


async def test_a_provider_syncs_edits_and_is_told_saved_only_once_they_are_stored(
    server: ServerProcess, start_node: StartNode
) -> None:
    a = await Provider.start(start_node, server, docs="notes")
    await a.wait_for(lambda e: e["event"] == "authenticated")
    await a.do("wait_synced")
    await a.do("set", key="title", value="Grüße 🌍")
    await a.do("text", insert="hello")
    await a.do("wait_saved")
    b = await Provider.start(start_node, server, docs="notes")
    await b.do("wait_keys", keys=["title"])
    snap = (await b.do("snapshot"))["docs"]["notes"]
    assert snap["map"] == {"title": "Grüße 🌍"} and snap["text"] == "hello"
    assert b"hello" in await fetch_state(server, "notes")
