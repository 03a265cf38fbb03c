"""Restore and named versions over REST on a real server, with real clients connected:
the restore is one forward edit every client receives live, recorded with `restore_of`;
labels resolve wherever `at=` does; bad input gets a clear status."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from pycrdt import Doc

from harness.wire import connect, edit
from server.auth import issue_token
from tests.conftest import ServerProcess, StartServer

SECRET = "a-secret-of-at-least-thirty-two-bytes!"


async def call(http: aiohttp.ClientSession, method: str, url: str, **kw: Any) -> tuple[int, Any]:
    async with http.request(method, url, **kw) as response:
        return response.status, await response.json()


async def test_restore_is_a_live_edit_and_labels_name_seqs(server: ServerProcess) -> None:
    base = f"{server.url}/v1/rooms/doc"
    author: Doc[Any] = Doc()
    async with aiohttp.ClientSession() as http, connect(server.url, "doc") as watcher:
        for word in ("draft ", "second ", "third"):
            status, _ = await call(http, "POST", f"{base}/update", data=edit(author, word))
            assert status == 200
        assert await call(http, "POST", f"{base}/versions", json={"name": "v1"}) == (
            200, {"name": "v1", "seq": 3})  # fmt: skip
        await watcher.sync()
        status, view_at_1 = await call(http, "GET", f"{base}/json?at=1")
        assert status == 200 and view_at_1["doc"] == {"t": "draft "}
        status, restored = await call(http, "POST", f"{base}/restore", json={"seq": 1})
        assert status == 200 and restored == {"seq": 4, "restore_of": 1, "changed": True}
        await watcher.wait_text("draft ")  # arrives live, no reconnect
        status, now = await call(http, "GET", f"{base}/json")
        assert now == {"room": "doc", "seq": 4, "doc": {"t": "draft "}}
        status, at_label = await call(http, "GET", f"{base}/json?at=v1")
        assert at_label["seq"] == 3 and at_label["doc"] == {"t": "draft second third"}
        async with http.get(f"{base}/state?at=v1") as response:
            assert response.headers["X-Performer-Seq"] == "3"
        status, history = await call(http, "GET", f"{base}/history")
        assert history["entries"][-1]["restore_of"] == 1
        assert "restore_of" not in history["entries"][0]
        assert await call(http, "POST", f"{base}/restore", json={"seq": 4}) == (
            200, {"seq": 4, "restore_of": 4, "changed": False})  # fmt: skip
        status, listed = await call(http, "GET", f"{base}/versions")
        assert listed == {"room": "doc", "versions": [{"name": "v1", "seq": 3}]}


async def test_restore_keeps_an_offline_edit_made_meanwhile(server: ServerProcess) -> None:
    base = f"{server.url}/v1/rooms/merge"
    author: Doc[Any] = Doc()
    async with aiohttp.ClientSession() as http:
        for word in ("one ", "two "):
            await call(http, "POST", f"{base}/update", data=edit(author, word))
        offline: Doc[Any] = Doc()
        async with http.get(f"{base}/state") as response:
            offline.apply_update(await response.read())
        offline_edit = edit(offline, "offline!")  # made before the restore, sent after it
        await call(http, "POST", f"{base}/restore", json={"seq": 1})
        await call(http, "POST", f"{base}/update", data=offline_edit)
        status, view = await call(http, "GET", f"{base}/json")
    assert view["doc"]["t"] == "one offline!"  # the restore removed "two ", the edit merged


async def test_bad_restore_and_version_requests(server_factory: StartServer) -> None:
    server = server_factory("--auth-secret", SECRET)
    write, read = issue_token(SECRET, "*"), issue_token(SECRET, "*", read_only=True)
    base = f"{server.url}/v1/rooms/r"
    async with aiohttp.ClientSession() as http:
        auth = {"Authorization": f"Bearer {write}"}
        await call(http, "POST", f"{base}/update", data=edit(Doc(), "x"), headers=auth)
        await call(http, "POST", f"{base}/versions", json={"name": "taken"}, headers=auth)
        read_auth = {"Authorization": f"Bearer {read}"}
        cases: list[tuple[str, str, Any, dict[str, str], int]] = [
            ("POST", "/v1/rooms/none/restore", {"seq": 0}, auth, 404),
            ("POST", "/v1/rooms/r/restore", {"seq": 2}, auth, 400),
            ("POST", "/v1/rooms/r/restore", {"seq": -1}, auth, 400),
            ("POST", "/v1/rooms/r/restore", {"seq": "1"}, auth, 400),
            ("POST", "/v1/rooms/r/restore", [1], auth, 400),
            ("POST", "/v1/rooms/r/restore", {"seq": 0}, read_auth, 403),
            ("POST", "/v1/rooms/r/restore", {"seq": 0}, {}, 401),
            ("POST", "/v1/rooms/r/versions", {"name": "taken"}, auth, 409),
            ("POST", "/v1/rooms/r/versions", {"name": ""}, auth, 400),
            ("POST", "/v1/rooms/r/versions", {"name": "x" * 101}, auth, 400),
            ("POST", "/v1/rooms/r/versions", {"name": "12"}, auth, 400),
            ("POST", "/v1/rooms/r/versions", {"name": "ok"}, read_auth, 403),
            ("GET", "/v1/rooms/r/json?at=nope", None, read_auth, 404),
            ("GET", "/v1/rooms/r/json?types=t:tree", None, read_auth, 400),
        ]
        for method, path, body, headers, expected in cases:
            async with http.request(method, f"{server.url}{path}", json=body,
                                    headers=headers) as response:  # fmt: skip
                assert response.status == expected, (method, path, body, await response.text())
                assert "error" in await response.json()
        typed = {**auth, "Content-Type": "application/json"}
        async with http.post(f"{base}/restore", data=b"{not json", headers=typed) as response:
            assert response.status == 400
        async with http.post(f"{base}/restore", data=b'{"seq": 0}', headers=auth) as response:
            assert response.status == 415  # no Content-Type: not a JSON request


async def test_restore_of_a_trimmed_seq_is_a_conflict(server_factory: StartServer) -> None:
    server = server_factory("--trim-log")
    base = f"{server.url}/v1/rooms/trimmed"
    author: Doc[Any] = Doc()
    async with aiohttp.ClientSession() as http:
        await call(http, "POST", f"{base}/update", data=edit(author, "a"))
        await call(http, "POST", f"{base}/update", data=edit(author, "b" * 70_000))
        for _ in range(200):  # the snapshot (and the trim) happen in the background
            status, changes = await call(http, "GET", f"{base}/changes?after=0")
            if "snapshot" in changes:
                break
            await asyncio.sleep(0.05)
        assert changes["snapshot"]["seq"] == 2
        status, body = await call(http, "POST", f"{base}/restore", json={"seq": 1})
        assert status == 409 and "trimmed" in body["error"]
        status, body = await call(http, "POST", f"{base}/restore", json={"seq": 0})
        assert status == 200 and body["changed"]  # seq 0 (empty) needs no log
        status, view = await call(http, "GET", f"{base}/json")
        assert view["doc"] == {}
