"""REST: state and time travel, durable POSTed updates, history, deletion, errors."""

from __future__ import annotations

from typing import Any

import aiohttp
from pycrdt import Doc, Text

from engine.protocol import Update
from harness.wire import connect, edit
from tests.conftest import ServerProcess, StartServer


def text_of(state: bytes) -> str:
    doc: Doc[Any] = Doc()
    doc.apply_update(state)
    return str(doc.get("t", type=Text))


async def test_posted_update_is_durable_broadcast_and_readable(server: ServerProcess) -> None:
    author: Doc[Any] = Doc()
    async with connect(server.url, "rest") as listener, aiohttp.ClientSession() as http:
        await listener.sync()
        response = await http.post(
            f"{server.url}/v1/rooms/rest/update", data=edit(author, "posted")
        )
        assert response.status == 200
        assert await response.json() == {"seq": 1}
        await listener.wait_text("posted")
        state = await (await http.get(f"{server.url}/v1/rooms/rest/state")).read()
        assert text_of(state) == "posted"


async def test_state_at_seq_rewinds_the_room(server: ServerProcess) -> None:
    author: Doc[Any] = Doc()
    async with aiohttp.ClientSession() as http:
        for word in ("one ", "two ", "three"):
            await http.post(f"{server.url}/v1/rooms/tt/update", data=edit(author, word))
        for at, expected in [
            (0, ""),
            (1, "one "),
            (2, "one two "),
            (3, "one two three"),
            (99, "one two three"),
        ]:
            response = await http.get(f"{server.url}/v1/rooms/tt/state", params={"at": at})
            assert response.status == 200
            assert response.content_type == "application/octet-stream"
            assert text_of(await response.read()) == expected


async def test_history_pages_through_the_audit_trail(server: ServerProcess) -> None:
    async with connect(server.url, "audit", ack=True) as client:
        await client.sync()
        for i in range(5):
            await client.send(Update(edit(client.doc, str(i))))
        await client.wait_saved(5)
    async with aiohttp.ClientSession() as http:
        page = await (
            await http.get(f"{server.url}/v1/rooms/audit/history", params={"after": 2, "limit": 2})
        ).json()
    assert page["last_seq"] == 5
    assert [e["seq"] for e in page["entries"]] == [3, 4]
    entry = page["entries"][0]
    assert entry["bytes"] > 0 and entry["ts"] > 0 and entry["user"] is None
    assert entry["clients"] == [client.doc.client_id]


async def test_rooms_listing_health_and_metrics(server: ServerProcess) -> None:
    async with aiohttp.ClientSession() as http:
        await http.post(f"{server.url}/v1/rooms/listed/update", data=edit(Doc(), "x"))
        rooms = (await (await http.get(f"{server.url}/v1/rooms")).json())["rooms"]
        assert [(r["name"], r["last_seq"]) for r in rooms] == [("listed", 1)]
        health = await (await http.get(f"{server.url}/healthz")).json()
        assert health["status"] == "ok" and health["auth"] == "open"
        metrics = await (await http.get(f"{server.url}/metrics")).text()
        assert "performer_commit_seconds_bucket" in metrics
        assert "performer_updates_total 1.0" in metrics


async def test_delete_removes_the_room_and_closes_its_clients(server: ServerProcess) -> None:
    async with connect(server.url, "doomed", ack=True) as client:
        await client.sync()
        await client.send(Update(edit(client.doc, "bye")))
        await client.wait_saved(1)
        async with aiohttp.ClientSession() as http:
            response = await http.delete(f"{server.url}/v1/rooms/doomed")
            assert response.status == 200
            assert await client.wait_closed() == 4503
            missing = await http.get(f"{server.url}/v1/rooms/doomed/state")
            assert missing.status == 404
            again = await http.delete(f"{server.url}/v1/rooms/doomed")
            assert again.status == 404


async def test_bad_input_gets_a_clear_status_and_reason(server_factory: StartServer) -> None:
    server = server_factory("--max-update-bytes", "2048")
    async with aiohttp.ClientSession() as http:
        cases = [
            ("POST", "/v1/rooms/r/update", b"\xff\xff\xff", 400, "decode"),
            ("POST", "/v1/rooms/r/update", edit(Doc(), "z" * 5000), 413, ""),
            ("GET", "/v1/rooms/nowhere/state", None, 404, "does not exist"),
            ("GET", "/v1/rooms/nowhere/history", None, 404, "does not exist"),
            ("GET", "/v1/rooms/r%00x/state", None, 400, "room name"),
        ]
        for method, path, body, status, words in cases:
            response = await http.request(method, server.url + path, data=body)
            assert response.status == status, path
            if response.content_type == "application/json":
                assert words in (await response.json())["error"]
        await http.post(f"{server.url}/v1/rooms/r/update", data=edit(Doc(), "ok"))
        unnamed = await http.get(f"{server.url}/v1/rooms/r/state", params={"at": "soon"})
        assert unnamed.status == 404  # not a seq, so a version name: there is none
        assert "no version named 'soon'" in (await unnamed.json())["error"]
        for bad in ("-1", "", "1.5"):
            bad_query = await http.get(f"{server.url}/v1/rooms/r/state", params={"at": bad})
            assert bad_query.status == 400, bad
        negative = await http.get(f"{server.url}/v1/rooms/r/history", params={"after": "-1"})
        assert negative.status == 400
