"""Cross-site requests and the authenticate hook: allowed origins on the WebSocket upgrade
and every writing REST call, real content types on POSTs, the hook seeing the request's
headers and cookies (old two-argument hooks still work), its exception text kept from the
caller, the room name checked before the hook is asked, a JWT without `mode` read-only,
and no token in the access log of the embedding recipe."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pycrdt import Doc

from engine.protocol import PermissionDeniedMessage, Update
from harness.wire import connect, edit
from server import Config, Grant, Hooks, create_app
from tests.conftest import StartServer
from tests.server.hooks_app import AppAuth

if TYPE_CHECKING:
    from server import AuthRequest

SECRET = "origin-secret-" + "0123456789abcdef" * 4
APP = "https://app.example"
EVIL = "https://evil.example"


class CookieAuth(Hooks):
    """The README's cookie recipe: the session cookie names the user; every room asked
    about is remembered (to show the room name is checked first)."""

    asked: list[str]

    def __init__(self) -> None:
        self.asked = []

    async def authenticate(self, request: AuthRequest) -> Grant | None:
        self.asked.append(request.room)
        if request.cookies.get("session") == "s-ann":
            return Grant(user="ann", mode="write")
        if request.headers.get("X-Api-Key") == "key-bob":
            return Grant(user="bob", mode="read")
        return None


async def start(tmp_path: Path, hooks: Hooks | None = None, **config: Any) -> TestServer:
    server = TestServer(create_app(Config(data_dir=tmp_path, **config), hooks=hooks))
    await server.start_server()
    return server


@pytest.fixture
async def cookie_server(tmp_path: Path) -> AsyncIterator[tuple[str, CookieAuth]]:
    hooks = CookieAuth()
    server = await start(tmp_path, hooks, allowed_origins=(APP,))
    yield str(server.make_url("")).rstrip("/"), hooks
    await server.close()


async def status_of(
    http: aiohttp.ClientSession, method: str, url: str, **kw: Any
) -> tuple[int, Any]:
    async with http.request(method, url, **kw) as response:
        text = await response.text()
        try:
            return response.status, json.loads(text)
        except ValueError:
            return response.status, text


async def test_writes_and_sockets_from_other_origins_are_refused(
    cookie_server: tuple[str, CookieAuth],
) -> None:
    base, _ = cookie_server
    cookie = {"Cookie": "session=s-ann"}
    async with aiohttp.ClientSession() as http:
        room = f"{base}/v1/rooms/notes"
        octet = {**cookie, "Content-Type": "application/octet-stream"}
        status, body = await status_of(http, "POST", f"{room}/update", data=edit(Doc(), "x"),
                                       headers={**octet, "Origin": EVIL})  # fmt: skip
        assert status == 403 and "origin" in body["error"], body
        status, body = await status_of(http, "POST", f"{room}/update", data=edit(Doc(), "x"),
                                       headers={**octet, "Origin": APP})  # fmt: skip
        assert (status, body) == (200, {"seq": 1})
        status, _ = await status_of(http, "POST", f"{room}/update", data=edit(Doc(), "y"),
                                    headers=octet)  # fmt: skip
        assert status == 200  # no Origin: not a browser, nothing cross-site to stop
        jsons = {**cookie, "Content-Type": "application/json", "Origin": EVIL}
        for path, payload in (("versions", {"name": "v1"}), ("restore", {"seq": 1})):
            status, body = await status_of(http, "POST", f"{room}/{path}",
                                           data=json.dumps(payload), headers=jsons)  # fmt: skip
            assert status == 403 and "origin" in body["error"], (path, body)
        status, _ = await status_of(http, "DELETE", room, headers={**cookie, "Origin": EVIL})
        assert status == 403
        status, body = await status_of(http, "GET", f"{room}/versions", headers=cookie)
        assert status == 200 and body["versions"] == []  # none of the refused calls wrote
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        async with connect(base, "notes", headers={**cookie, "Origin": EVIL}):
            pass
    assert refused.value.status == 403
    async with connect(base, "notes", headers={**cookie, "Origin": APP}) as client:
        await client.sync()
        assert "x" in client.text()


async def test_without_the_setting_only_the_servers_own_origin_may_write(tmp_path: Path) -> None:
    server = await start(tmp_path)
    base = str(server.make_url("")).rstrip("/")
    try:
        async with aiohttp.ClientSession() as http:
            url = f"{base}/v1/rooms/open/update"
            octet = {"Content-Type": "application/octet-stream"}
            status, body = await status_of(http, "POST", url, data=edit(Doc(), "a"),
                                           headers={**octet, "Origin": EVIL})  # fmt: skip
            assert status == 403 and "--allowed-origins" in body["error"]
            status, _ = await status_of(http, "POST", url, data=edit(Doc(), "a"),
                                        headers={**octet, "Origin": base})  # fmt: skip
            assert status == 200
        with pytest.raises(aiohttp.WSServerHandshakeError):
            async with connect(base, "open", headers={"Origin": EVIL}):
                pass
        async with connect(base, "open", headers={"Origin": base}) as client:
            await client.sync()
    finally:
        await server.close()


async def test_posts_need_their_real_content_type(cookie_server: tuple[str, CookieAuth]) -> None:
    base, _ = cookie_server
    cookie = {"Cookie": "session=s-ann"}
    async with aiohttp.ClientSession() as http:
        room = f"{base}/v1/rooms/typed"
        for content_type in ("text/plain", "application/x-www-form-urlencoded",
                             "multipart/form-data; boundary=x", None):  # fmt: skip
            headers = dict(cookie)
            if content_type:
                headers["Content-Type"] = content_type
            status, body = await status_of(http, "POST", f"{room}/update", data=edit(Doc(), "t"),
                                           headers=headers,
                                           skip_auto_headers=["Content-Type"])  # fmt: skip
            assert status == 415 and "application/octet-stream" in body["error"], content_type
        status, _ = await status_of(
            http,
            "POST",
            f"{room}/update",
            data=edit(Doc(), "t"),
            headers={**cookie, "Content-Type": "application/octet-stream"},
        )
        assert status == 200
        for path, payload in (("versions", {"name": "v1"}), ("restore", {"seq": 1})):
            status, body = await status_of(
                http,
                "POST",
                f"{room}/{path}",
                data=json.dumps(payload),
                headers={**cookie, "Content-Type": "text/plain"},
            )
            assert status == 415 and "application/json" in body["error"], path
            status, body = await status_of(http, "POST", f"{room}/{path}", json=payload,
                                           headers=cookie)  # fmt: skip
            assert status == 200, (path, body)


async def test_the_hook_sees_cookies_and_headers(cookie_server: tuple[str, CookieAuth]) -> None:
    base, _ = cookie_server
    async with connect(base, "cookies", headers={"Cookie": "session=s-ann"}, ack=True) as ann:
        await ann.sync()
        await ann.send(Update(edit(ann.doc, "by ann")))
        await ann.wait_saved(1)
    async with connect(base, "cookies", headers={"X-Api-Key": "key-bob"}) as bob:
        await bob.sync()
        await bob.send(Update(edit(bob.doc, " by bob")))
        assert isinstance(await bob.wait_for(PermissionDeniedMessage), PermissionDeniedMessage)
    async with connect(base, "cookies") as nobody:
        assert await nobody.wait_closed() == 4401
    async with aiohttp.ClientSession(cookies={"session": "s-ann"}) as http:
        status, body = await status_of(http, "GET", f"{base}/v1/rooms/cookies/history")
        assert status == 200 and [e["user"] for e in body["entries"]] == ["ann"]


async def test_two_argument_hooks_keep_working_and_never_leak_their_errors(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = await start(tmp_path, AppAuth())
    base = str(server.make_url("")).rstrip("/")
    try:
        async with connect(base, "notes", token="ann-token") as ann:
            await ann.sync()
        async with connect(base, "notes", token="boom") as boom:
            assert await boom.wait_closed() == 4401
            assert "unreachable" not in boom.close_reason
            assert "authenticate hook" in boom.close_reason
        with caplog.at_level(logging.WARNING, logger="server.auth"):
            async with aiohttp.ClientSession() as http:
                url = f"{base}/v1/rooms/notes/history?token=boom"
                status, body = await status_of(http, "GET", url)
        assert status == 401 and "unreachable" not in json.dumps(body), body
        assert "authenticate hook" in body["error"]
        assert any("user database unreachable" in r.getMessage() for r in caplog.records)
    finally:
        await server.close()


class RecordingAuth(Hooks):
    """A two-argument hook that remembers every room it was asked about."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def authenticate(self, token: str | None, room: str) -> Grant | None:
        self.asked.append(room)
        return Grant(user="ann")


async def test_the_room_name_is_checked_before_the_hook_is_asked(tmp_path: Path) -> None:
    hooks = RecordingAuth()
    server = await start(tmp_path, hooks)
    base = str(server.make_url("")).rstrip("/")
    bad = "a%00x%E2%80%AE"
    try:
        async with connect(base, bad, token="t") as client:
            assert await client.wait_closed() == 4400
        async with aiohttp.ClientSession() as http:
            status, _ = await status_of(http, "GET", f"{base}/v1/rooms/{bad}/history?token=t")
            assert status == 400
        assert hooks.asked == []
    finally:
        await server.close()


async def test_a_token_without_mode_reads_but_cannot_write(server_factory: StartServer) -> None:
    server = server_factory("--auth-secret", SECRET)
    claims = {"room": "team", "exp": int(time.time()) + 300, "sub": "ann"}
    no_mode = jwt.encode(claims, SECRET, algorithm="HS256")
    async with aiohttp.ClientSession() as http:
        url = f"{server.url}/v1/rooms/team/update?token={no_mode}"
        status, body = await status_of(http, "POST", url, data=edit(Doc(), "x"))
        assert status == 403 and "read-only" in body["error"], body
    async with connect(server.url, "team", token=no_mode) as reader:
        await reader.sync()
        await reader.send(Update(edit(reader.doc, "sneaky")))
        assert isinstance(await reader.wait_for(PermissionDeniedMessage), PermissionDeniedMessage)
    for extra in ([], ["--read-only"]):
        made = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "server", "token", "--secret", SECRET, "--room", "team", *extra],
            capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
        decoded = jwt.decode(made.stdout.strip(), SECRET, algorithms=["HS256"])
        assert decoded["mode"] == ("read" if extra else "write")


async def test_the_embedding_recipe_logs_no_token(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from server import TokenRedactingAccessLogger

    async def own_route(_: web.Request) -> web.Response:
        return web.Response(text="own")

    parent = web.Application()
    parent.router.add_get("/", own_route)
    parent.add_subapp("/sync/", create_app(Config(data_dir=tmp_path)))
    secret_token = "tok-" + "9" * 40
    server = TestServer(parent)
    with caplog.at_level(logging.INFO, logger="aiohttp.access"):
        await server.start_server(access_log_class=TokenRedactingAccessLogger)
        base = str(server.make_url("")).rstrip("/")
        try:
            async with connect(f"{base}/sync", "logged", token=secret_token) as client:
                await client.sync()
            async with aiohttp.ClientSession() as http:
                url = f"{base}/sync/v1/rooms/logged/state?token={secret_token}&at=0"
                await status_of(
                    http, "GET", url, headers={"Referer": f"{base}/?token={secret_token}"}
                )
        finally:
            await server.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert any("/sync/v1/rooms/logged/state?token=REDACTED&at=0" in line for line in lines), lines
    assert not any(secret_token in line for line in lines), lines
