"""Signed webhooks against a real receiver: signatures, coalescing, order, retries with
the same delivery id, no gap across kill -9 mid-retry, parking and unparking, receivers
that refuse, hang or redirect, and a server that will not start unsigned by accident."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pycrdt import Doc

from harness.wire import edit
from tests.conftest import ServerProcess, StartServer
from tests.server.receiver import Receiver, verify

SECRET = "s3cret"


def webhook_server(factory: StartServer, url: str, *extra: str, **kwargs: Any) -> ServerProcess:
    return factory("--webhook", url, "--webhook-secret", SECRET, *extra, **kwargs)


async def write(server: ServerProcess, room: str, count: int, user: str = "") -> None:
    connector = aiohttp.TCPConnector(force_close=True)
    author: Doc[Any] = Doc()
    async with aiohttp.ClientSession(connector=connector) as http:
        for i in range(count):
            url = f"{server.url}/v1/rooms/{room}/update"
            async with http.post(url, data=edit(author, f"{i},")) as response:
                assert response.status == 200, await response.text()


async def performer(*args: str) -> subprocess.CompletedProcess[str]:
    """The CLI, run off the event loop (the servers in this test keep running)."""
    command = [sys.executable, "-m", "server", *args]
    return await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, timeout=30, check=False
    )


def assert_gap_free(receiver: Receiver, room: str, last: int) -> None:
    """The acknowledged ranges of a room cover 1..last in order, without holes."""
    ranges = [(r.payload["from_seq"], r.payload["to_seq"]) for r in receiver.received
              if r.payload["room"] == room]  # fmt: skip
    covered = 0
    for start, end in ranges:
        assert start <= covered + 1, f"gap before {start}: {ranges}"
        covered = max(covered, end)
    assert covered == last, ranges


async def test_changes_arrive_signed_coalesced_and_in_order(
    server_factory: StartServer, receiver: Receiver
) -> None:
    server = webhook_server(server_factory, receiver.url)
    await asyncio.gather(write(server, "alpha", 20), write(server, "beta", 5))
    await receiver.wait_for(lambda r: r.acknowledged_upto("alpha") == 20
                            and r.acknowledged_upto("beta") == 5)  # fmt: skip
    assert all(verify(SECRET, r) for r in receiver.received)
    assert not verify("another secret", receiver.received[0])
    assert_gap_free(receiver, "alpha", 20)
    assert_gap_free(receiver, "beta", 5)
    alpha = [r for r in receiver.received if r.payload["room"] == "alpha"]
    assert len(alpha) < 20  # coalesced: at most one request per room per second
    first = alpha[0].payload
    assert set(first) == {"room", "from_seq", "to_seq", "users", "ts"} and first["users"] == []
    ids = [r.headers["X-Performer-Delivery"] for r in receiver.received]
    assert len(set(ids)) == len(ids)


async def test_failed_attempts_are_retried_with_the_same_delivery_id(
    server_factory: StartServer, receiver: Receiver
) -> None:
    receiver.status = 500
    server = webhook_server(server_factory, receiver.url, "--webhook-retry", "0.05")
    await write(server, "retry", 3)
    await receiver.wait_for(lambda r: len(r.received) >= 3)
    receiver.status = 200
    await receiver.wait_for(lambda r: len(r.received) >= 4)
    first_id = receiver.received[0].headers["X-Performer-Delivery"]
    assert {r.headers["X-Performer-Delivery"] for r in receiver.received[:4]} == {first_id}
    assert receiver.received[3].body == receiver.received[0].body
    assert_gap_free(receiver, "retry", receiver.acknowledged_upto("retry"))


async def test_a_kill_9_mid_retry_resumes_without_a_gap(
    server_factory: StartServer, receiver: Receiver
) -> None:
    server = webhook_server(server_factory, receiver.url, "--webhook-retry", "0.05")
    await write(server, "crash", 5)
    await receiver.wait_for(lambda r: r.acknowledged_upto("crash") == 5)
    receiver.status = 503
    await write(server, "crash", 7)
    await receiver.wait_for(lambda r: any(x.payload["from_seq"] == 6 for x in r.received))
    server.kill()  # mid-retry: seq 6..12 were never acknowledged
    receiver.status = 200
    server.restart()
    await write(server, "crash", 3)
    await receiver.wait_for(lambda r: len(r.received) > 0 and r.received[-1].payload["to_seq"] == 15
                            and r.status == 200)  # fmt: skip
    acknowledged = [r for r in receiver.received if r.payload["from_seq"] != 6 or True]
    assert acknowledged
    covered = 5
    for r in receiver.received[1:]:
        start, end = r.payload["from_seq"], r.payload["to_seq"]
        assert start <= covered + 1, "a gap after the restart"
        covered = max(covered, end)
    assert covered == 15


async def test_a_room_is_parked_after_the_schedule_and_resumes_when_retried(
    server_factory: StartServer, receiver: Receiver
) -> None:
    receiver.status = 500
    # the day-long schedule scaled to under a second; no probe during the test
    server = webhook_server(server_factory, receiver.url, "--webhook-retry", "0.00001",
                            "--webhook-probe", "3600")  # fmt: skip
    await write(server, "parked", 2)
    await write(server, "fine", 1)  # another room's deliveries are not held up
    await receiver.wait_for(lambda r: sum(x.payload["room"] == "parked" for x in r.received) >= 12)
    await asyncio.sleep(0.5)  # nothing more comes: the room is parked, not retried forever
    attempts = sum(x.payload["room"] == "parked" for x in receiver.received)
    assert attempts == 12
    listed = await performer("webhooks", "--data", str(server.data_dir))
    assert "parked: parked at seq 1..2 after 12 attempts" in listed.stdout, listed.stdout
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/metrics") as response:
            metrics = await response.text()
    await_parked = [line for line in metrics.splitlines()
                    if line.startswith('performer_parked_rooms{consumer="webhook"}')]  # fmt: skip
    assert await_parked and float(await_parked[0].split()[-1]) >= 1
    receiver.status = 200
    retried = await performer("webhooks", "--data", str(server.data_dir), "--retry", "parked")
    assert "parked: will be retried" in retried.stdout
    await receiver.wait_for(lambda r: r.acknowledged_upto("parked") == 2 and r.status == 200
                            and r.received[-1].payload["room"] in ("parked", "fine"))  # fmt: skip


@pytest.mark.parametrize("misbehaviour", ["refuse", "hang", "redirect"])
async def test_a_bad_receiver_costs_the_rooms_nothing(
    server_factory: StartServer, receiver: Receiver, misbehaviour: str
) -> None:
    url = receiver.url
    if misbehaviour == "refuse":
        await receiver.stop()  # nothing listens there any more
    receiver.hang = misbehaviour == "hang"
    receiver.redirect = misbehaviour == "redirect"
    server = webhook_server(server_factory, url, "--webhook-timeout", "0.5",
                            "--webhook-retry", "0.05")  # fmt: skip
    await write(server, "busy", 30)  # every update acknowledged while deliveries fail
    async with aiohttp.ClientSession() as http:
        await asyncio.sleep(1.0)
        async with http.get(f"{server.url}/metrics") as response:
            metrics = await response.text()
    name = 'performer_delivery_errors_total{consumer="webhook"}'
    failures = [line for line in metrics.splitlines() if line.startswith(name)]
    assert failures and float(failures[0].split()[-1]) >= 1
    if misbehaviour == "redirect":
        assert all(r.headers.get("X-Performer-Signature") for r in receiver.received)
        assert len(receiver.received) >= 1  # only /hook was called: redirects are not followed


def test_a_webhook_without_a_secret_refuses_to_start(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "server", "serve", "--port", "0", "--data", str(tmp_path),
         "--webhook", "http://127.0.0.1:9/hook"],
        capture_output=True, text=True, timeout=30, check=False,
        env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert result.returncode == 2
    assert "--webhook-secret" in result.stderr and "Traceback" not in result.stderr
