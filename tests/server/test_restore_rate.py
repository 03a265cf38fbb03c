"""Bytes restores may write to one room per second (`--restore-bytes-per-second`), on a real
`performer serve` over LMDB and over Redis: a room past its rate gets 503 with a
Retry-After after which its next restore is served, and nothing is written meanwhile;
another room is restored all the while; a restore that changes nothing is neither written
nor charged; a negative value (of this or `--pages-per-second`) is refused at start."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import aiohttp
import pytest
from pycrdt import Doc

from harness.wire import edit
from server.auth import issue_token
from tests.conftest import ROOT, StartServer

SECRET = "a-secret-of-at-least-thirty-two-bytes!"
RATE = 50_000  # bytes per second; the bucket holds 4 s of it
BIG = 350_000  # one restore re-inserting this much text owes 3 s at once


def _serve(server_factory: StartServer, backend_flags: list[str]) -> str:
    """A server with auth and the restore rate set to `RATE`; its base URL."""
    flags = ["--restore-bytes-per-second", str(RATE)]
    return server_factory("--auth-secret", SECRET, *backend_flags, *flags).url


async def _room(http: aiohttp.ClientSession, base: str, room: str, token: str) -> None:
    """Seq 1: a word; seq 2: `BIG` characters more. Restoring 1 deletes them (a small
    edit), restoring 2 writes them again (an edit of about `BIG` bytes)."""
    author: Doc[Any] = Doc()
    for text in ("a", "x" * BIG):
        async with http.post(
            f"{base}/v1/rooms/{room}/update?token={token}",
            data=edit(author, text),
            headers={"Content-Type": "application/octet-stream"},
        ) as response:
            assert response.status == 200, await response.text()


async def _restore(
    http: aiohttp.ClientSession, base: str, room: str, token: str, seq: int
) -> tuple[int, dict[str, Any], str | None]:
    """(status, body, Retry-After)."""
    url = f"{base}/v1/rooms/{room}/restore?token={token}"
    async with http.post(url, json={"seq": seq}) as response:
        return response.status, await response.json(), response.headers.get("Retry-After")


async def _last_seq(http: aiohttp.ClientSession, base: str, room: str, token: str) -> int:
    async with http.get(f"{base}/v1/rooms/{room}/state?token={token}") as response:
        assert response.status == 200, await response.text()
        return int(response.headers["X-Performer-Seq"])


async def test_a_room_past_its_restore_rate_gets_503_and_nothing_is_written(
    server_factory: StartServer, backend_flags: list[str]
) -> None:
    base = _serve(server_factory, backend_flags)
    token = issue_token(SECRET, "*", user="restorer")
    async with asyncio.timeout(60), aiohttp.ClientSession() as http:
        for room in ("flooded", "other"):
            await _room(http, base, room, token)
        status, body, _ = await _restore(http, base, "flooded", token, 1)
        assert (status, body["changed"]) == (200, True)  # small: well within the rate
        status, body, _ = await _restore(http, base, "flooded", token, 2)
        assert (status, body["changed"]) == (200, True)  # big: the room now owes ~3 s
        before = await _last_seq(http, base, "flooded", token)
        status, body, retry_after = await _restore(http, base, "flooded", token, 1)
        assert status == 503, body
        assert "restores" in body["error"]
        assert retry_after is not None and 1 <= int(retry_after) <= 4
        assert await _last_seq(http, base, "flooded", token) == before  # nothing written
        status, body, _ = await _restore(http, base, "other", token, 1)
        assert (status, body["changed"]) == (200, True)  # another room is not held back
        await asyncio.sleep(int(retry_after))
        status, body, _ = await _restore(http, base, "flooded", token, 1)
        assert (status, body["changed"]) == (200, True), body


async def test_a_restore_that_changes_nothing_writes_nothing_and_costs_nothing(
    server_factory: StartServer, backend_flags: list[str]
) -> None:
    base = _serve(server_factory, backend_flags)
    token = issue_token(SECRET, "*", user="restorer")
    async with asyncio.timeout(60), aiohttp.ClientSession() as http:
        await _room(http, base, "same", token)
        status, body, _ = await _restore(http, base, "same", token, 2)  # already equal
        assert (status, body) == (200, {"seq": 2, "restore_of": 2, "changed": False})
        status, body, _ = await _restore(http, base, "same", token, 1)
        assert (status, body["changed"]) == (200, True)
        for _ in range(5):  # at seq 1's content now: nothing to write, nothing owed
            status, body, _ = await _restore(http, base, "same", token, 1)
            assert (status, body["changed"]) == (200, False), body
        assert await _last_seq(http, base, "same", token) == 3
        status, body, _ = await _restore(http, base, "same", token, 2)  # BIG: nothing owed
        assert (status, body["changed"]) == (200, True), body


@pytest.mark.parametrize("flag", ["--restore-bytes-per-second", "--pages-per-second"])
def test_a_negative_rate_is_refused_at_start(flag: str) -> None:
    started = subprocess.run(
        [sys.executable, "-m", "server", "serve", flag, "-1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert started.returncode == 2
    assert flag in started.stderr
