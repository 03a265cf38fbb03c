"""The examples that are an application's code, not a script: hooks, an embedding app and a
webhook receiver, each served by a real aiohttp server on a loopback port."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import importlib
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from pycrdt import Array, Doc

from examples.my_hooks import SESSIONS, MyHooks
from server import Config, create_app

WAIT = 20.0
ALICE = {"session": next(iter(SESSIONS))}


def _update() -> bytes:
    doc: Doc[Any] = Doc()
    doc.get("items", type=Array).append("hello")
    return doc.get_update()


async def test_my_hooks_know_the_sessions_and_index_every_change(tmp_path: Path) -> None:
    hooks = MyHooks()
    async with TestServer(create_app(Config(data_dir=tmp_path), hooks=hooks)) as server:
        async with aiohttp.ClientSession(cookies=ALICE) as alice:
            url = server.make_url("/v1/rooms/notes/update")
            headers = {"Content-Type": "application/octet-stream"}
            async with alice.post(url, data=_update(), headers=headers) as response:
                assert response.status == 200, await response.text()
        async with aiohttp.ClientSession(cookies={"session": "forged"}) as stranger:
            async with stranger.get(server.make_url("/v1/rooms/notes/json")) as response:
                assert response.status == 401
        async with asyncio.timeout(WAIT):
            while hooks.index != [("notes", 1, "alice")]:
                await asyncio.sleep(0.05)


async def test_the_embedding_app_serves_the_rooms_under_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from examples.embed import build_app

    monkeypatch.chdir(tmp_path)  # the example's ./data
    async with TestServer(build_app()) as server:
        async with aiohttp.ClientSession(cookies=ALICE) as alice:
            async with alice.get(server.make_url("/sync/v1/rooms")) as response:
                assert response.status == 200, await response.text()
            page = {"Origin": "https://evil.example"}
            async with alice.post(
                server.make_url("/sync/v1/rooms/notes/update"),
                data=_update(),
                headers={**page, "Content-Type": "application/octet-stream"},
            ) as response:
                assert response.status == 403  # a page of another origin may not write
    assert (tmp_path / "data").is_dir()


async def test_the_webhook_receiver_accepts_only_signed_requests(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WEBHOOK_SECRET", "receiver-secret")
    import examples.webhook_receiver as receiver

    receiver = importlib.reload(receiver)  # it reads the secret when imported
    body = json.dumps({"room": "lobby", "from_seq": 1, "to_seq": 3, "users": ["ann"], "ts": 1.0})
    signature = "sha256=" + hmac.new(b"receiver-secret", body.encode(), hashlib.sha256).hexdigest()
    async with TestClient(TestServer(receiver.app)) as client:
        signed = await client.post("/hook", data=body, headers={"X-Performer-Signature": signature})
        assert signed.status == 200
        forged = await client.post(
            "/hook", data=body, headers={"X-Performer-Signature": "sha256=0"}
        )
        assert forged.status == 401
        unsigned = await client.post("/hook", data=body)
        assert unsigned.status == 401
    assert capsys.readouterr().out.splitlines() == ["lobby 1 .. 3 ['ann']"]
