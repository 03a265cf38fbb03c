"""Who may open the operator console (`GET /console`, `GET /v1/stats`) and what the
routes it reads add: an admin grant (JWT claim or the hook's `Grant(role="admin")`),
403 for anyone else; without auth, localhost only unless `--console-open`; the stats
route keeps secrets out; `/v1/rooms?detail=1` and `/connections` show who is connected
and the last edit, on LMDB and on Redis."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp.test_utils import TestServer
from pycrdt import Doc

from harness.wire import connect, edit
from server import Config, Grant, Hooks, create_app
from server.auth import issue_token
from server.hooks import AuthRequest
from server.http.admin import is_local
from tests.conftest import StartServer
from tests.redis_process import RedisProcess
from tests.server.receiver import Receiver

SECRET = "console-secret-" + "0123456789abcdef" * 4
FORWARDED = {"X-Forwarded-For": "203.0.113.7"}
CONSOLE_ROUTES = ("/console", "/v1/stats")


async def start(tmp_path: Path, hooks: Hooks | None = None, **config: Any) -> TestServer:
    server = TestServer(create_app(Config(data_dir=tmp_path, **config), hooks=hooks))
    await server.start_server()
    return server


async def status(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as response:
        return response.status, await response.text()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_local_means_loopback_and_not_relayed() -> None:
    assert is_local("127.0.0.1", {})
    assert is_local("::1", {})
    assert is_local("::ffff:127.0.0.1", {})
    assert not is_local("10.1.2.3", {})
    assert not is_local("::ffff:10.1.2.3", {})
    assert not is_local("2001:db8::1", {})
    assert not is_local(None, {})
    assert not is_local("", {})
    assert not is_local("not-an-address", {})
    for header in ("X-Forwarded-For", "Forwarded", "X-Real-IP"):
        assert not is_local("127.0.0.1", {header: "127.0.0.1"}), header


@pytest.fixture
async def open_server(tmp_path: Path) -> AsyncIterator[str]:
    server = await start(tmp_path)
    yield str(server.make_url("")).rstrip("/")
    await server.close()


async def test_without_auth_only_localhost_gets_the_console(open_server: str) -> None:
    for route in CONSOLE_ROUTES:
        code, body = await status(open_server + route)
        assert code == 200, (route, body)
        code, body = await status(open_server + route, FORWARDED)
        assert code == 403, (route, body)
        assert "--console-open" in body
    code, body = await status(open_server + "/console")
    assert 'data-testid="rooms-table"' in body or "console" in body.lower()


async def test_console_open_serves_any_address(tmp_path: Path) -> None:
    server = await start(tmp_path, console_open=True)
    try:
        base = str(server.make_url("")).rstrip("/")
        for route in CONSOLE_ROUTES:
            assert (await status(base + route, FORWARDED))[0] == 200, route
    finally:
        await server.close()


async def test_console_open_flag_on_the_command_line(server_factory: StartServer) -> None:
    closed = server_factory()
    opened = server_factory("--console-open")
    assert (await status(closed.http_url + "/console", FORWARDED))[0] == 403
    assert (await status(opened.http_url + "/console", FORWARDED))[0] == 200


async def test_only_an_admin_token_opens_the_console(tmp_path: Path) -> None:
    server = await start(tmp_path, auth_secret=SECRET)
    base = str(server.make_url("")).rstrip("/")
    admin = issue_token(SECRET, "*", user="ops", admin=True)
    everyone = issue_token(SECRET, "*", user="eve")
    lobby = issue_token(SECRET, "lobby", user="eve")
    other_secret = issue_token("x" * 64, "*", user="ops", admin=True)
    try:
        for route in CONSOLE_ROUTES:
            assert (await status(base + route))[0] == 401, route
            assert (await status(base + route, bearer(other_secret)))[0] == 401, route
            assert (await status(base + route, bearer(everyone)))[0] == 403, route
            assert (await status(base + route, bearer(lobby)))[0] == 403, route
            assert (await status(base + route + "?token=" + everyone))[0] == 403, route
            assert (await status(base + route, bearer(admin)))[0] == 200, route
            assert (await status(base + route + "?token=" + admin))[0] == 200, route
            # A forwarded admin is still an admin: the address rule is for open servers.
            assert (await status(base + route, {**bearer(admin), **FORWARDED}))[0] == 200
    finally:
        await server.close()


async def test_stats_shows_settings_without_secrets(tmp_path: Path) -> None:
    server = await start(
        tmp_path,
        auth_secret=SECRET,
        redis_url=None,
        webhook_url="https://hooks.example/in",
        webhook_secret="webhook-secret-value",
    )
    base = str(server.make_url("")).rstrip("/")
    try:
        code, body = await status(base + "/v1/stats", bearer(issue_token(SECRET, "*", admin=True)))
        assert code == 200
        assert SECRET not in body and "webhook-secret-value" not in body
        stats = json.loads(body)
        assert stats["settings"]["auth_secret"] == "(set)"
        assert stats["settings"]["webhook_url"] == "https://hooks.example/in"
        assert stats["rooms_loaded"] == 0 and stats["connections"] == 0
        assert stats["memory_bytes"] > 0
        assert {"updates_total", "commit_count", "commit_seconds_sum"} <= stats.keys()
    finally:
        await server.close()


class RoleAuth(Hooks):
    """An application that names its own operators."""

    async def authenticate(self, request: AuthRequest) -> Grant | None:
        key = request.headers.get("X-Api-Key")
        if key == "ops-key":
            return Grant(user="ops", mode="read", role="admin")
        if key == "ann-key":
            return Grant(user="ann", mode="write")
        return None


async def test_the_hook_grants_the_admin_role(tmp_path: Path) -> None:
    server = await start(tmp_path, RoleAuth())
    base = str(server.make_url("")).rstrip("/")
    try:
        for route in CONSOLE_ROUTES:
            assert (await status(base + route, {"X-Api-Key": "ops-key"}))[0] == 200
            assert (await status(base + route, {"X-Api-Key": "ann-key"}))[0] == 403
            assert (await status(base + route))[0] == 401
    finally:
        await server.close()


def test_performer_token_admin_adds_the_role_claim() -> None:
    def token(*flags: str) -> dict[str, Any]:
        out = subprocess.run(
            [sys.executable, "-m", "server", "token", "--secret", SECRET, "--room", "*", *flags],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        claims: dict[str, Any] = jwt.decode(out, SECRET, algorithms=["HS256"])
        return claims

    assert token("--admin", "--user", "ops")["role"] == "admin"
    assert "role" not in token("--user", "eve")


@pytest.fixture(params=["lmdb", "redis"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    if request.param == "lmdb":
        return {}
    redis: RedisProcess = request.getfixturevalue("redis_server")
    return {"redis_url": redis.url}


async def test_rooms_detail_and_connections_show_people_and_last_edit(
    tmp_path: Path, backend: dict[str, Any]
) -> None:
    server = await start(tmp_path, auth_secret=SECRET, **backend)
    base = str(server.make_url("")).rstrip("/")
    ann = issue_token(SECRET, "desk", user="ann")
    reader = issue_token(SECRET, "desk", user="rita", read_only=True)
    other = issue_token(SECRET, "elsewhere", user="eve")
    admin = issue_token(SECRET, "*", user="ops", admin=True)
    try:
        async with connect(base, "desk", token=ann, ack=True) as writer:
            await writer.sync()
            doc: Doc[Any] = Doc()
            await writer.send_raw(_update_frame(edit(doc, "hello")))
            await writer.wait_saved(1)
            async with connect(base, "desk", token=reader) as watcher:
                await watcher.sync()
                code, body = await status(base + "/v1/rooms?detail=1", bearer(admin))
                assert code == 200, body
                (room,) = json.loads(body)["rooms"]
                assert room["name"] == "desk" and room["connections"] == 2
                assert room["users"] == ["ann", "rita"]
                assert room["last_user"] == "ann" and room["last_ts"] > 0
                assert room["parked"] == []
                code, body = await status(base + "/v1/rooms/desk/connections", bearer(reader))
                assert code == 200, body
                people = sorted(json.loads(body)["connections"], key=lambda p: p["user"])
                assert people == [  # harness.wire connects with aiohttp, as the SDK does
                    {"user": "ann", "mode": "write", "kind": "python-sdk"},
                    {"user": "rita", "mode": "read", "kind": "python-sdk"},
                ]
                code, _ = await status(base + "/v1/rooms/desk/connections", bearer(other))
                assert code == 403
        code, body = await status(base + "/v1/rooms", bearer(admin))
        assert "last_user" not in json.loads(body)["rooms"][0]  # opt-in only
    finally:
        await server.close()


def _update_frame(update: bytes) -> bytes:
    from engine.protocol import Update, encode

    return encode(Update(update))


async def test_a_parked_room_shows_its_reason_and_retry_resumes_it(
    tmp_path: Path, backend: dict[str, Any], receiver: Receiver
) -> None:
    receiver.status = 500  # every attempt fails: the shortened schedule parks the room
    server = await start(
        tmp_path,
        auth_secret=SECRET,
        webhook_url=receiver.url,
        webhook_secret="hook-secret",
        webhook_retry_seconds=0.00002,  # the whole day-long schedule in about 1.5 s
        webhook_probe_seconds=3600.0,  # no probe: only the retry may unpark it
        **backend,
    )
    base = str(server.make_url("")).rstrip("/")
    admin = bearer(issue_token(SECRET, "*", user="ops", admin=True))
    writer = bearer(issue_token(SECRET, "*", user="ann"))
    state_url = base + "/v1/rooms/hooked/deliveries"
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(
                base + "/v1/rooms/hooked/update",
                data=edit(Doc(), "x"),
                headers={**writer, "Content-Type": "application/octet-stream"},
            ) as response:
                assert response.status == 200, await response.text()
            deadline = asyncio.get_running_loop().time() + 30
            while True:
                code, body = await status(state_url, admin)
                assert code == 200, body
                (state,) = json.loads(body)["deliveries"]
                if state["parked"] is not None:
                    break
                assert asyncio.get_running_loop().time() < deadline, f"never parked: {body}"
                await asyncio.sleep(0.1)
            assert state["consumer"] == "webhook" and state["cursor"] == 0 and state["lag"] == 1
            assert "500" in state["parked"]["error"] and state["parked"]["to_seq"] == 1
            assert (await status(state_url, writer))[0] == 403
            (listed,) = json.loads((await status(base + "/v1/rooms?detail=1", admin))[1])["rooms"]
            assert listed["parked"] == ["webhook"]
            retry = base + "/v1/rooms/hooked/deliveries/retry"
            json_type = {"Content-Type": "application/json"}
            async with http.post(retry, json={}, headers=writer) as response:
                assert response.status == 403
            async with http.post(
                retry, data="{}", headers={**admin, "Content-Type": "text/plain"}
            ) as response:
                assert response.status == 415
            receiver.status = 200
            async with http.post(retry, data="{}", headers={**admin, **json_type}) as response:
                assert response.status == 200
                assert (await response.json())["retried"] == ["webhook"]
            await receiver.wait_for(lambda r: r.acknowledged_upto("hooked") == 1, timeout=30)
            deadline = asyncio.get_running_loop().time() + 30
            while True:
                (state,) = json.loads((await status(state_url, admin))[1])["deliveries"]
                if state["parked"] is None and state["lag"] == 0:
                    break
                assert asyncio.get_running_loop().time() < deadline, state
                await asyncio.sleep(0.1)
            async with http.post(retry, data="{}", headers={**admin, **json_type}) as response:
                assert (await response.json())["retried"] == []  # nothing parked any more
    finally:
        await server.close()
