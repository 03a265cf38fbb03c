"""The auth matrix: WebSocket close codes and HTTP statuses for every kind of token."""

from __future__ import annotations

import time

import aiohttp
import jwt
import pytest
from pycrdt import Doc

from engine.protocol import (
    AwarenessEntry,
    AwarenessUpdate,
    PermissionDeniedMessage,
    SyncStep2,
    Update,
    encode_awareness,
)
from harness.wire import connect, edit
from server.auth import issue_token
from tests.conftest import ServerProcess, StartServer

SECRET = "test-secret-" + "0123456789abcdef" * 4


@pytest.fixture
def secure(server_factory: StartServer) -> ServerProcess:
    return server_factory("--auth-secret", SECRET)


def token(room: str = "team", **kwargs: object) -> str:
    return issue_token(SECRET, room, **kwargs)  # type: ignore[arg-type]


def tampered() -> str:
    head, body, signature = token().split(".")
    return f"{head}.{body}.{signature[:-4]}AAAA"


@pytest.mark.parametrize(
    ("make_token", "code"),
    [
        (lambda: None, 4401),
        (lambda: "not-a-jwt", 4401),
        (tampered, 4401),
        (lambda: token(ttl=-10), 4401),
        (lambda: issue_token("other-secret-" + "f" * 64, "team"), 4401),
        (
            lambda: jwt.encode(
                {"room": "team", "exp": int(time.time()) + 60}, SECRET, algorithm="HS512"
            ),
            4401,
        ),
        (lambda: token("other-room"), 4403),
        (lambda: token("tea"), 4403),
    ],
)
async def test_bad_tokens_close_the_socket_with_the_documented_code(
    secure: ServerProcess, make_token: object, code: int
) -> None:
    assert callable(make_token)
    async with connect(secure.url, "team", token=make_token()) as client:
        assert await client.wait_closed() == code


async def test_valid_tokens_by_query_header_and_prefix_pattern(secure: ServerProcess) -> None:
    async with connect(secure.url, "team", token=token()) as by_query:
        await by_query.sync()
    headers = {"Authorization": f"Bearer {token()}"}
    async with connect(secure.url, "team", headers=headers) as by_header:
        await by_header.sync()
    async with connect(secure.url, "team-blue", token=token("team-*")) as by_prefix:
        await by_prefix.sync()


async def test_read_only_clients_read_but_cannot_write(secure: ServerProcess) -> None:
    async with connect(secure.url, "team", token=token(), ack=True) as writer:
        await writer.sync()
        await writer.send(Update(edit(writer.doc, "original")))
        await writer.wait_saved(1)
        async with connect(secure.url, "team", token=token(read_only=True)) as reader:
            await reader.sync()
            assert reader.text() == "original"
            await reader.send(SyncStep2(b"\x00\x00"))  # the no-op step2 of a stock client
            await reader.send(Update(edit(reader.doc, " vandalised")))
            denied = await reader.wait_for(PermissionDeniedMessage)
            assert isinstance(denied, PermissionDeniedMessage) and "read-only" in denied.reason
            await reader.send(
                AwarenessUpdate(encode_awareness([AwarenessEntry(7, 1, '{"user":"reader"}')]))
            )
            await reader.wait_for(PermissionDeniedMessage)
            assert sum(isinstance(m, PermissionDeniedMessage) for m in reader.received) == 2
            await writer.send(Update(edit(writer.doc, "!")))
            await writer.wait_saved(2)
    async with aiohttp.ClientSession() as http:
        response = await http.get(f"{secure.url}/v1/rooms/team/history", params={"token": token()})
        entries = (await response.json())["entries"]
    assert [e["seq"] for e in entries] == [1, 2]


async def test_token_expiring_mid_session_closes_the_connection(secure: ServerProcess) -> None:
    async with connect(secure.url, "team", token=token(ttl=2)) as client:
        await client.sync()
        assert await client.wait_closed(timeout=10) == 4401
        assert "expired" in client.close_reason


async def test_user_claim_is_recorded_in_the_audit_trail(secure: ServerProcess) -> None:
    async with connect(secure.url, "team", token=token(user="alice"), ack=True) as client:
        await client.sync()
        await client.send(Update(edit(client.doc, "signed")))
        await client.wait_saved(1)
    async with aiohttp.ClientSession() as http:
        response = await http.get(
            f"{secure.url}/v1/rooms/team/history", headers={"Authorization": f"Bearer {token()}"}
        )
        assert [e["user"] for e in (await response.json())["entries"]] == ["alice"]


@pytest.mark.parametrize(
    ("method", "path", "make_token", "status"),
    [
        ("GET", "/v1/rooms/team/state", lambda: None, 401),
        ("GET", "/v1/rooms/team/state", tampered, 401),
        ("GET", "/v1/rooms/team/history", lambda: token("other"), 403),
        ("POST", "/v1/rooms/team/update", lambda: token(read_only=True), 403),
        ("DELETE", "/v1/rooms/team", lambda: token(read_only=True), 403),
        ("DELETE", "/v1/rooms/team", lambda: None, 401),
        ("GET", "/v1/rooms", lambda: None, 401),
    ],
)
async def test_rest_auth_matrix(
    secure: ServerProcess, method: str, path: str, make_token: object, status: int
) -> None:
    assert callable(make_token)
    value = make_token()
    headers = {"Authorization": f"Bearer {value}"} if value else {}
    async with aiohttp.ClientSession() as http:
        response = await http.request(method, secure.url + path, headers=headers, data=b"\x00\x00")
        assert response.status == status
        assert "error" in await response.json()


async def test_room_listing_shows_only_rooms_the_token_covers(secure: ServerProcess) -> None:
    async with aiohttp.ClientSession() as http:
        for room in ("team-a", "team-b", "private"):
            response = await http.post(
                f"{secure.url}/v1/rooms/{room}/update",
                params={"token": token(room)},
                data=b"\x00\x00",
            )
            assert response.status == 200
        doc_update = edit(Doc(), "x")
        for room in ("team-a", "team-b", "private"):
            await http.post(
                f"{secure.url}/v1/rooms/{room}/update",
                params={"token": token(room)},
                data=doc_update,
            )
        response = await http.get(f"{secure.url}/v1/rooms", params={"token": token("team-*")})
        names = sorted(r["name"] for r in (await response.json())["rooms"])
    assert names == ["team-a", "team-b"]
