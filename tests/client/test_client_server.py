"""The SDK against a real `performer serve` process."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import aiohttp
import pytest
from pycrdt import Array, Text

from engine.client import AuthError, Backoff, Status, WriteDenied, connect, edit_and_save
from engine.protocol import Update, decode
from engine.session import SyncSession
from tests.client.conftest import ROOT, LiveServer, StartServer, make_token
from tests.client.helpers import DEADLINE, items, server_doc, wait_for_doc
from tests.engine.helpers import recording_doc

FAST = Backoff(initial=0.05, maximum=0.5)


async def test_two_clients_converge(live_server: LiveServer, tmp_path: Path) -> None:
    url = live_server.ws_url
    async with (
        connect(url, "lobby", store_path=tmp_path / "a", backoff=FAST) as alice,
        connect(url, "lobby", store_path=tmp_path / "b", backoff=FAST) as bob,
    ):
        await asyncio.wait_for(asyncio.gather(alice.synced(), bob.synced()), DEADLINE)
        alice.doc.get("items", type=Array).append("from alice")
        bob.doc.get("items", type=Array).append("from bob")

        both = {"from alice", "from bob"}
        await wait_for_doc(alice.doc, lambda: set(items(alice.doc)) == both)
        await wait_for_doc(bob.doc, lambda: set(items(bob.doc)) == both)
        assert items(alice.doc) == items(bob.doc)


async def test_saved_means_the_edit_survives_a_server_crash(
    live_server: LiveServer, tmp_path: Path
) -> None:
    async with connect(live_server.ws_url, "crash", store_path=tmp_path, backoff=FAST) as client:
        await asyncio.wait_for(client.synced(), DEADLINE)
        client.doc.get("items", type=Array).append("durable")
        await asyncio.wait_for(client.saved(), DEADLINE)
        assert client.status == "saved"
        live_server.kill()  # SIGKILL right after the acknowledgement

    live_server.start()
    assert items(await server_doc(live_server.http_url, "crash")) == ["durable"]


async def test_status_reports_synced_then_saved_for_an_edit(
    live_server: LiveServer, tmp_path: Path
) -> None:
    seen: list[Status] = []
    async with connect(live_server.ws_url, "status", store_path=tmp_path, backoff=FAST) as client:
        await asyncio.wait_for(client.synced(), DEADLINE)
        client.on_status(seen.append)
        client.doc.get("items", type=Array).append("x")
        await asyncio.wait_for(client.saved(), DEADLINE)
    assert seen[:2] == ["synced", "saved"]


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
async def test_edits_made_while_the_server_is_down_arrive_after_it_returns(
    live_server: LiveServer, tmp_path: Path, how: str
) -> None:
    async with connect(live_server.ws_url, "outage", store_path=tmp_path, backoff=FAST) as client:
        await asyncio.wait_for(client.synced(), DEADLINE)
        if how == "sigterm":
            live_server.stop()
        else:
            live_server.kill()
        client.doc.get("items", type=Array).extend(["while", "down"])
        live_server.start()  # same port: the client reconnects by itself
        await asyncio.wait_for(client.saved(), DEADLINE)

    assert items(await server_doc(live_server.http_url, "outage")) == ["while", "down"]


async def test_offline_edits_from_an_exited_process_reach_the_server_from_a_new_one(
    live_server: LiveServer, tmp_path: Path
) -> None:
    store = str(tmp_path / "store")
    live_server.stop()
    edited = await run_client("edit", live_server.ws_url, "later", store, "one", "two")
    assert edited.strip() in ("offline", "connecting")

    live_server.start()
    saved = await run_client("save", live_server.ws_url, "later", store)

    assert saved.strip() == "saved"
    assert items(await server_doc(live_server.http_url, "later")) == ["one", "two"]


async def run_client(*args: str) -> str:
    """Run tests/client/client_process.py; returns its stdout, fails on a non-zero exit."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.client.client_process",
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()
    return out.decode()


@pytest.mark.parametrize(
    ("token_room", "code"), [(None, 4401), ("not-a-jwt", 4401), ("other", 4403)]
)
async def test_a_bad_token_raises_and_is_not_retried(
    start_server: StartServer, tmp_path: Path, token_room: str | None, code: int
) -> None:
    server = start_server("--auth-secret", "s3cret")
    token = None
    if token_room == "not-a-jwt":
        token = "not-a-jwt"
    elif token_room is not None:
        token = make_token("s3cret", token_room)
    seen: list[Status] = []
    client = connect(server.ws_url, "guarded", token=token, store_path=tmp_path, backoff=FAST)
    client.on_status(seen.append)
    async with client:
        with pytest.raises(AuthError) as caught:
            await asyncio.wait_for(client.synced(), DEADLINE)
        client.doc.get("items", type=Array).append("kept locally")
        with pytest.raises(AuthError):
            await asyncio.wait_for(client.saved(), DEADLINE)
    assert caught.value.code == code
    assert client.error is caught.value
    assert seen == ["connecting", "offline"]  # one attempt, no retry loop


async def test_a_valid_token_syncs(start_server: StartServer, tmp_path: Path) -> None:
    server = start_server("--auth-secret", "s3cret")
    token = make_token("s3cret", "guarded")
    async with connect(server.ws_url, "guarded", token=token, store_path=tmp_path) as client:
        client.doc.get("items", type=Array).append("allowed")
        await asyncio.wait_for(client.saved(), DEADLINE)
    assert items(await server_doc(server.http_url, "guarded", token)) == ["allowed"]


async def test_a_read_only_token_makes_saved_raise_instead_of_hanging(
    start_server: StartServer, tmp_path: Path
) -> None:
    server = start_server("--auth-secret", "s3cret")
    token = make_token("s3cret", "guarded", "--read-only")
    async with connect(server.ws_url, "guarded", token=token, store_path=tmp_path) as client:
        await asyncio.wait_for(client.synced(), DEADLINE)
        client.doc.get("items", type=Array).append("not allowed")
        with pytest.raises(WriteDenied, match="read-only"):
            await asyncio.wait_for(client.saved(), DEADLINE)
        assert client.status == "synced"  # connected, but the edit is not on the server


async def test_what_others_wrote_is_readable_offline_after_a_restart(
    live_server: LiveServer, tmp_path: Path
) -> None:
    url = live_server.ws_url
    async with connect(url, "news", store_path=tmp_path / "writer", backoff=FAST) as writer:
        writer.doc.get("items", type=Array).append("headline")
        await asyncio.wait_for(writer.saved(), DEADLINE)
    async with connect(url, "news", store_path=tmp_path / "reader", backoff=FAST) as reader:
        await asyncio.wait_for(reader.synced(), DEADLINE)
        assert items(reader.doc) == ["headline"]
    live_server.stop()

    async with connect(url, "news", store_path=tmp_path / "reader", backoff=FAST) as offline:
        assert offline.status in ("offline", "connecting")
        assert items(offline.doc) == ["headline"]


def test_edit_and_save_is_a_one_call_script_helper(live_server: LiveServer, tmp_path: Path) -> None:
    edit_and_save(
        live_server.ws_url,
        "script",
        lambda doc: doc.get("items", type=Array).append("from a script"),
        store_path=tmp_path,
    )
    assert items(asyncio.run(server_doc(live_server.http_url, "script"))) == ["from a script"]


async def test_a_client_that_missed_an_update_resyncs_by_itself(
    live_server: LiveServer, tmp_path: Path
) -> None:
    """An update lost on the way (a server that relays less than it should) leaves a
    later one waiting for it; the client asks for a fresh step 2 on its own, without
    reconnecting, once it has waited longer than a resync takes."""
    author, made = recording_doc(client_id=77)
    author.get("t", type=Text).insert(0, "lost")
    author.get("t", type=Text).insert(4, " and found")
    seen: list[Status] = []
    async with connect(live_server.ws_url, "gap", store_path=None, backoff=FAST) as client:
        await asyncio.wait_for(client.synced(), DEADLINE)
        client.on_status(seen.append)
        deliver = client._on_frame
        dropped: list[bytes] = []

        def drop_first_update(session: SyncSession, data: bytes) -> None:
            if not dropped and isinstance(decode(data), Update):
                dropped.append(data)
                return
            deliver(session, data)

        client._on_frame = drop_first_update  # type: ignore[method-assign]
        async with aiohttp.ClientSession() as http:
            for update in made:
                url = f"{live_server.http_url}/v1/rooms/gap/update"
                async with http.post(url, data=update) as response:
                    assert response.status == 200
        await wait_for_doc(
            client.doc, lambda: str(client.doc.get("t", type=Text)) == "lost and found"
        )
        assert dropped and "connecting" not in seen
