"""Bytes of change-feed and history pages per caller per second (`--page-bytes-per-second`),
on a real `performer serve` over LMDB and over Redis: a caller far past its rate gets 503
with a Retry-After after which its next page is served, every token of one user shares
the user's bucket while other users are served; a caller within its rate is never refused
nor paused; SSE catch-ups count and are paced; a flood of parallel pages is held to the
rate; bad values are refused at start."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from typing import Any

import aiohttp
from pycrdt import Doc

from harness.wire import edit
from server.auth import issue_token
from tests.conftest import ROOT, StartServer

SECRET = "a-secret-of-at-least-thirty-two-bytes!"
DEADLINE = 60.0


async def _fill(base: str, room: str, count: int, size: int) -> None:
    author: Doc[Any] = Doc()
    token = issue_token(SECRET, room, user="writer")
    async with aiohttp.ClientSession() as http:
        for n in range(count):
            async with http.post(
                f"{base}/v1/rooms/{room}/update?token={token}",
                data=edit(author, f"{n}:" + "x" * size),
                headers={"Content-Type": "application/octet-stream"},
            ) as response:
                assert response.status == 200, await response.text()


def _reader(user: str | None, room: str = "big") -> str:
    return issue_token(SECRET, room, read_only=True, user=user, ttl=600 + len(user or ""))


async def _get(http: aiohttp.ClientSession, url: str) -> tuple[int, int, str | None]:
    """(status, body bytes, Retry-After)."""
    async with http.get(url) as response:
        body = await response.read()
        return response.status, len(body), response.headers.get("Retry-After")


async def _counts(http: aiohttp.ClientSession, base: str) -> dict[str, float]:
    async with http.get(f"{base}/metrics") as response:
        text = await response.text()
    found = re.findall(r'^performer_pages_(refused_total\{reason="\w+"\}|paused_total) (\S+)$',
                       text, re.M)  # fmt: skip
    return {name: float(value) for name, value in found}


def _start(server_factory: StartServer, backend_flags: list[str], *flags: str) -> str:
    return server_factory("--auth-secret", SECRET, *backend_flags, *flags).url


async def test_past_its_rate_a_caller_gets_503_and_an_honest_retry_after(
    server_factory: StartServer, backend_flags: list[str]
) -> None:
    rate, page = 100_000, 200_000
    base = _start(server_factory, backend_flags, "--page-bytes", str(page),
                  "--page-bytes-per-second", str(rate))  # fmt: skip
    await _fill(base, "big", 3, 300_000)  # one entry a page, about 400 kB of JSON
    async with asyncio.timeout(DEADLINE), aiohttp.ClientSession() as http:
        url = f"{base}/v1/rooms/big/changes?after=0&token="
        status, size, _ = await _get(http, url + _reader("alice"))
        taken = time.monotonic()
        assert status == 200 and size > page + 1.5 * rate  # owes more than a second
        # Another token of the same user, another route: the same bucket.
        history = f"{base}/v1/rooms/big/history?after=0&limit=1000000&token="
        status, _, retry_after = await _get(http, history + _reader("alice") + "&x=1")
        assert status == 503 and retry_after is not None
        owed = (size - page) / rate - (time.monotonic() - taken)
        assert int(retry_after) in (int(owed), int(owed) + 1, int(owed) + 2)
        assert (await _get(http, url + _reader("bob")))[0] == 200  # others are served
        assert (await _get(http, url + _reader(None)))[0] == 200  # a userless read token too
        assert (await _counts(http, base))['refused_total{reason="rate"}'] == 1
        await asyncio.sleep(int(retry_after))
        asked = time.monotonic()
        status, size, _ = await _get(http, f"{base}/v1/rooms/big/changes?after=1&token="
                                     + _reader("alice"))  # fmt: skip
        assert status == 200 and size > 300_000
        assert time.monotonic() - asked < 5  # served, not refused nor paused for seconds
        counts = await _counts(http, base)
        assert counts['refused_total{reason="rate"}'] == 1 and counts["paused_total"] == 0


async def test_a_caller_within_its_rate_is_never_refused_nor_paused(
    server_factory: StartServer, backend_flags: list[str]
) -> None:
    base = _start(server_factory, backend_flags, "--page-bytes", "100000",
                  "--page-bytes-per-second", "400000")  # fmt: skip
    await _fill(base, "big", 20, 1_000)
    token = _reader("carol")
    async with asyncio.timeout(DEADLINE), aiohttp.ClientSession() as http:

        async def read(route: str) -> int:
            taken = 0
            for after in range(0, 20, 2):  # ~3 kB pages, ten a second: ~30 kB/s each
                url = f"{base}/v1/rooms/big/{route}?after={after}&limit=2&token={token}"
                status, size, _ = await _get(http, url)
                assert status == 200, (route, after, status)
                taken += size
                await asyncio.sleep(0.1)
            return taken

        for _ in range(2):  # both routes at once, twice
            await asyncio.gather(read("changes"), read("history"))
        counts = await _counts(http, base)
        assert counts['refused_total{reason="rate"}'] == 0 and counts["paused_total"] == 0


async def _catch_up(http: aiohttp.ClientSession, base: str, token: str, last: int) -> float:
    """Seconds an SSE stream from the start takes to deliver entry `last`."""
    started = time.monotonic()
    headers = {"Accept": "text/event-stream"}
    async with http.get(f"{base}/v1/rooms/big/changes?after=0&token={token}",
                        headers=headers) as response:  # fmt: skip
        assert response.status == 200
        async for line in response.content:
            if line == f"id: {last}\n".encode():
                return time.monotonic() - started
    raise AssertionError("the stream ended before its catch-up did")


async def test_sse_catch_ups_count_and_are_paced_per_user(
    server_factory: StartServer, backend_flags: list[str]
) -> None:
    rate, entries = 150_000, 5
    base = _start(server_factory, backend_flags, "--page-bytes", "60000",
                  "--page-bytes-per-second", str(rate))  # fmt: skip
    await _fill(base, "big", entries, 50_000)  # about 67 kB an event, 335 kB a stream
    async with asyncio.timeout(DEADLINE), aiohttp.ClientSession() as http:
        alice = [_catch_up(http, base, _reader("alice") + f"&s={n}", entries) for n in range(2)]
        *alices, bob = await asyncio.gather(*alice, _catch_up(http, base, _reader("bob"), entries))
        # Alice's two streams share one bucket: 670 kB at 150 kB/s, less the burst (one
        # page) and each stream's last page (seen by the client before the pause after it).
        assert max(alices) > (2 * 335_000 - 60_000 - 2 * 67_000) / rate * 0.9
        assert bob < max(alices)
        assert (await _counts(http, base))["paused_total"] >= 1


async def test_a_flood_of_parallel_pages_is_held_to_the_rate(
    server_factory: StartServer, backend_flags: list[str]
) -> None:
    """Four readers of one user fetch pages as fast as answers come, ignoring
    Retry-After: the bytes they get stay within burst + rate x time (+ the pages in
    flight), and another user is served meanwhile."""
    rate, page, seconds = 300_000, 150_000, 3.0
    base = _start(server_factory, backend_flags, "--page-bytes", str(page),
                  "--page-bytes-per-second", str(rate))  # fmt: skip
    await _fill(base, "big", 4, 100_000)
    got: list[int] = []
    statuses: list[int] = []
    async with asyncio.timeout(DEADLINE), aiohttp.ClientSession() as http:

        async def flood(n: int) -> None:
            url = f"{base}/v1/rooms/big/changes?after=0&token={_reader('mallory')}&n={n}"
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                status, size, _ = await _get(http, url)
                statuses.append(status)
                if status == 200:
                    got.append(size)
                else:
                    await asyncio.sleep(0.01)

        started = time.monotonic()
        flooding = asyncio.gather(*(flood(n) for n in range(4)))
        await asyncio.sleep(0.5)
        assert (await _get(http, f"{base}/v1/rooms/big/changes?after=0&token={_reader('bob')}"))[
            0
        ] == 200
        await flooding
        elapsed = time.monotonic() - started
        assert set(statuses) == {200, 503}
        assert sum(got) <= page + rate * elapsed + 2 * max(got)


def test_bad_values_are_refused_at_start() -> None:
    for bad in ("-1", "abc", "1.5", ""):
        done = subprocess.run(
            [sys.executable, "-m", "server", "serve", "--port", "0",
             "--page-bytes-per-second", bad],
            cwd=ROOT, capture_output=True, text=True, timeout=DEADLINE,
        )  # fmt: skip
        assert done.returncode == 2, bad
        assert "--page-bytes-per-second" in done.stderr, done.stderr
        assert "is not a whole number >= 0 (0: no limit)" in done.stderr, done.stderr


async def test_history_pages_count_too(
    server_factory: StartServer, backend_flags: list[str]
) -> None:
    rate, page = 200, 5_000  # a page of heads is about 1.1 x its records' budget
    base = _start(server_factory, backend_flags, "--page-bytes", str(page),
                  "--page-bytes-per-second", str(rate))  # fmt: skip
    await _fill(base, "big", 100, 10)
    async with asyncio.timeout(DEADLINE), aiohttp.ClientSession() as http:
        url = f"{base}/v1/rooms/big/history?after=0&limit=1000&token={_reader('dave')}"
        status, size, _ = await _get(http, url)
        assert status == 200 and size > page + 1.5 * rate  # owes more than a second
        status, _, retry_after = await _get(http, url.replace("history", "changes"))
        assert status == 503 and retry_after is not None
        await asyncio.sleep(int(retry_after))
        assert (await _get(http, url))[0] == 200


async def test_tiny_pages_are_held_to_pages_per_second(
    server_factory: StartServer, backend_flags: list[str]
) -> None:
    """A page counts for at least a `--pages-per-second`th of the byte rate: a reader of
    tiny history pages is paced like one of big pages, and other users are not."""
    base = _start(server_factory, backend_flags, "--page-bytes", "100000",
                  "--page-bytes-per-second", "100000", "--pages-per-second", "10")  # fmt: skip
    await _fill(base, "big", 3, 10)
    url = f"{base}/v1/rooms/big/history?after=0&limit=1&token="
    async with asyncio.timeout(DEADLINE), aiohttp.ClientSession() as http:
        started = time.monotonic()
        for _ in range(20):  # ~200-byte pages: 4 kB in all, far within the byte rate
            status, size, _ = await _get(http, url + _reader("tiny"))
            assert status == 200 and size < 1_000
        assert time.monotonic() - started >= 0.8  # 10 at once (the bucket), then 10/s
        other = time.monotonic()
        assert (await _get(http, url + _reader("someone-else")))[0] == 200
        assert time.monotonic() - other < 0.5
        counts = await _counts(http, base)
        assert counts["paused_total"] >= 8 and counts['refused_total{reason="rate"}'] == 0
