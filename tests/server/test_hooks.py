"""Application hooks against real servers: the app's own auth, on_change from the durable
log (complete and in order across kill -9), server-side edits, slow and failing hooks,
bad --hooks values. The same delivery runs on Redis in tests/scaleout/test_redis_hooks.py.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pycrdt import Array, Doc

from engine.protocol import PermissionDeniedMessage, Update
from harness.wire import connect, edit
from tests.conftest import StartServer
from tests.server.hooks_app import delivered, wait_until

HOOKS = "tests.server.hooks_app"
WAIT = 20.0


async def post(http: aiohttp.ClientSession, url: str, **kwargs: Any) -> tuple[int, Any]:
    async with http.post(url, **kwargs) as response:
        return response.status, await response.json()


async def test_the_authenticate_hook_decides_who_may_read_and_write(
    server_factory: StartServer,
) -> None:
    server = server_factory("--hooks", f"{HOOKS}:AppAuth")
    async with connect(server.url, "notes", token="ann-token", ack=True) as ann:
        await ann.sync()
        await ann.send(Update(edit(ann.doc, "by ann")))
        await ann.wait_saved(1)
        async with connect(server.url, "notes", token="rita-token") as rita:
            await rita.sync()
            assert rita.text() == "by ann"
            await rita.send(Update(edit(rita.doc, " by rita")))
            assert isinstance(await rita.wait_for(PermissionDeniedMessage), PermissionDeniedMessage)
    for token, code in [(None, 4401), ("nobody", 4401), ("boom", 4401), ("not-a-grant", 4401)]:
        async with connect(server.url, "notes", token=token) as refused:
            assert await refused.wait_closed() == code
            assert "authenticate hook" in refused.close_reason
    async with aiohttp.ClientSession() as http:
        bearer = {"Authorization": "Bearer ann-token"}
        status, body = await post(http, f"{server.url}/v1/rooms/notes/update",
                                  data=edit(Doc(), "rest"), headers=bearer)  # fmt: skip
        assert status == 200 and body == {"seq": 2}
        status, _ = await post(http, f"{server.url}/v1/rooms/notes/update?token=rita-token",
                               data=edit(Doc(), "no"))  # fmt: skip
        assert status == 403
        for token in ("boom", "not-a-grant", "wrong"):
            async with http.get(f"{server.url}/v1/rooms/notes/history?token={token}") as r:
                assert r.status == 401 and "authenticate hook" in (await r.json())["error"]
        async with http.get(f"{server.url}/v1/rooms/notes/history", headers=bearer) as r:
            users = [e["user"] for e in (await r.json())["entries"]]
        assert users == ["ann", "ann"]  # the hook's user is the one in the history


async def test_on_change_gets_every_seq_in_order_even_across_kill_9(
    server_factory: StartServer, tmp_path: Path
) -> None:
    log = tmp_path / "changes.jsonl"
    env = {"PERFORMER_TEST_CHANGES": str(log)}
    server = server_factory("--hooks", f"{HOOKS}:Recorder", env=env)
    author: Doc[Any] = Doc()
    rooms = ["alpha", "beta"]
    connector = aiohttp.TCPConnector(force_close=True)  # no kept-alive socket to a killed server
    async with aiohttp.ClientSession(connector=connector) as http:
        for i in range(30):
            room = rooms[i % 2]
            status, _ = await post(http, f"{server.url}/v1/rooms/{room}/update",
                                   data=edit(author, f"{i},", name=room))  # fmt: skip
            assert status == 200
            if i == 17:
                server.kill()  # deliveries in flight die with the process
                server.restart()
    await wait_until(lambda: {(d["room"], d["seq"]) for d in delivered(log)}
                     >= {(r, s) for r in rooms for s in range(1, 16)}, "every seq")  # fmt: skip
    for room in rooms:
        seqs = [d["seq"] for d in delivered(log) if d["room"] == room]
        first_seen = list(dict.fromkeys(seqs))
        assert first_seen == list(range(1, 16)), seqs  # in order, none skipped
        assert all(b >= a for a, b in zip(seqs, seqs[1:], strict=False)) or len(seqs) > 15


async def test_a_hung_or_failing_hook_never_holds_up_its_room(
    server_factory: StartServer, tmp_path: Path
) -> None:
    log = tmp_path / "changes.jsonl"
    server = server_factory("--hooks", f"{HOOKS}:Recorder",
                            env={"PERFORMER_TEST_CHANGES": str(log)})  # fmt: skip
    for room in ("stuck-room", "failing-room"):
        async with connect(server.url, room, ack=True) as writer, connect(server.url, room) as peer:
            await writer.sync()
            await peer.sync()
            for i in range(20):  # the hook hangs (or raises) on the first one already
                await writer.send(Update(edit(writer.doc, f"{i};")))
            await writer.wait_saved(20, timeout=WAIT)
            await peer.wait_text("".join(f"{i};" for i in range(20)))
    async with connect(server.url, "healthy") as other:
        await other.sync()
    async with aiohttp.ClientSession() as http:
        await post(http, f"{server.url}/v1/rooms/healthy/update", data=edit(Doc(), "x"))
        await wait_until(lambda: any(d["room"] == "healthy" for d in delivered(log)), "healthy")
        async with http.get(f"{server.url}/metrics") as response:
            metrics = await response.text()
    errors = [line for line in metrics.splitlines()
              if line.startswith('performer_delivery_errors_total{consumer="hooks"}')]  # fmt: skip
    assert errors and float(errors[0].split()[-1]) >= 20  # each failing seq counted


async def test_a_bot_edit_reaches_a_connected_client_and_survives_a_restart(
    server_factory: StartServer,
) -> None:
    server = server_factory("--hooks", f"{HOOKS}:ListBot")
    async with connect(server.url, "bots") as client:
        await client.sync()
        updates: list[bytes] = []
        client.doc.observe(lambda event: updates.append(bytes(event.update)))
        client.doc.get("list", type=Array).append("ping-1")
        await client.send(Update(updates[-1]))

        def answered() -> bool:
            return "pong-1" in (client.doc.get("list", type=Array).to_py() or [])

        async with asyncio.timeout(WAIT):
            while not answered():
                await client.recv()
    server.kill()
    server.restart()
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/v1/rooms/bots/json") as response:
            view = await response.json()
        async with http.get(f"{server.url}/v1/rooms/bots/history") as response:
            users = [e["user"] for e in (await response.json())["entries"]]
    assert view["doc"]["list"] == ["ping-1", "pong-1"]
    assert users == [None, "bot"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no.such.module:Hooks", "cannot import"),
        (f"{HOOKS}:Missing", "has no 'Missing'"),
        (f"{HOOKS}:json", "not a Hooks subclass"),
        ("nocolon", "expected MODULE:NAME"),
    ],
)
def test_bad_hooks_values_are_one_clear_line_and_exit_2(
    tmp_path: Path, spec: str, message: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "server", "serve", "--port", "0", "--data", str(tmp_path),
         "--hooks", spec],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.stderr


async def test_server_side_edits_in_process_commit_once_or_not_at_all(tmp_path: Path) -> None:
    """`rooms.edit` from an embedding app: the block's changes are one durable update in
    the history under the user; a block that raises leaves no trace."""
    from aiohttp.test_utils import TestServer
    from pycrdt import Text

    from server import Config, create_app
    from server.http.keys import ROOMS

    app = create_app(Config(data_dir=tmp_path, idle_unload_seconds=0.1))
    async with TestServer(app) as test_server:
        rooms = app[ROOMS]
        base = str(test_server.make_url("")).rstrip("/")
        async with connect(base, "live") as client:
            await client.sync()
            async with rooms.edit("live", user="assistant") as doc:
                doc.get("t", type=Text).insert(0, "hello")
                doc.get("t", type=Text).insert(5, " world")
            await client.wait_text("hello world")
            with pytest.raises(RuntimeError):
                async with rooms.edit("live", user="assistant") as doc:
                    doc.get("t", type=Text).insert(0, "half-done ")
                    raise RuntimeError("the model timed out")
            async with rooms.edit("live", user="assistant") as doc:
                assert str(doc.get("t", type=Text)) == "hello world"
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/v1/rooms/live/history") as response:
                entries = (await response.json())["entries"]
        assert [e["user"] for e in entries] == ["assistant"]
        await asyncio.sleep(0.3)  # past idle unload: edits reload the room from the store
        async with rooms.edit("cold", user="assistant") as doc:
            doc.get("t", type=Text).insert(0, "loaded on demand")
        assert rooms.last_seq["cold"] == 1


async def test_the_readme_time_bot_answers_in_the_chat(server_factory: StartServer) -> None:
    """examples/time_bot.py, started exactly as the README says."""
    from engine.client import connect as sdk_connect
    from engine.client.chat import new_message

    server = server_factory("--hooks", "examples.time_bot:TimeBot")
    async with sdk_connect(server.ws_url, "lobby", store_path=None) as client:
        await asyncio.wait_for(client.synced(), WAIT)
        messages = client.doc.get("messages", type=Array)
        messages.append(new_message("ann", "/time"))

        def replies() -> list[Any]:
            return [m for m in messages.to_py() or [] if m.get("user") == "time-bot"]

        async with asyncio.timeout(WAIT):
            while not replies():
                await asyncio.sleep(0.05)
        (reply,) = replies()
        assert reply["text"].startswith("It is ") and reply["reply_to"] == messages[0]["id"]
        messages.append(new_message("ann", "thanks"))
        await asyncio.wait_for(client.saved(), WAIT)
        await asyncio.sleep(0.5)
        assert len(replies()) == 1  # answered once, not on every later change


async def test_the_server_mounts_as_a_sub_application_of_an_existing_app(tmp_path: Path) -> None:
    """The README's embedding example: the app's own routes beside ours under /sync/."""
    from aiohttp import web
    from aiohttp.test_utils import TestServer

    from server import Config, create_app

    async def own_route(_: web.Request) -> web.Response:
        return web.Response(text="the app's own page")

    parent = web.Application()
    parent.router.add_get("/", own_route)
    parent.add_subapp("/sync/", create_app(Config(data_dir=tmp_path)))
    async with TestServer(parent) as test_server:
        base = str(test_server.make_url("")).rstrip("/")
        async with connect(f"{base}/sync", "mounted", ack=True) as client:
            await client.sync()
            await client.send(Update(edit(client.doc, "inside")))
            await client.wait_saved(1)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/") as response:
                assert await response.text() == "the app's own page"
            async with http.get(f"{base}/sync/v1/rooms/mounted/json") as response:
                assert (await response.json())["doc"] == {"t": "inside"}
