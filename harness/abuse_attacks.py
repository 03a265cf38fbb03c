"""The attacks of `harness.abuse`, run in a process of their own.

The attackers used to share the probe's event loop, so the probe's latency also counted
the harness's own work: reading megabyte pages, hundreds of held streams, JSON views
coming back twenty at a time. Here they run in a separate process at a lower CPU priority
(`ATTACKER_NICE`): an attacker's own CPU is not the server's, and on a small shared
machine the attacking client would otherwise compete with the server it attacks for the
same cores. The attacks themselves are unchanged; the server still gets all of them.

The parent drives the process through a pipe: the process says `ready` once its streams
are open (the other attacks already running), runs until told `finish`, then waits for
its expiring streams and says `expired`, and on `stop` ends its attacks and sends back
what they got (`AttackTally.as_dict`).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from multiprocessing import AuthenticationError
from multiprocessing.connection import Connection, Listener
from typing import Any

import aiohttp

from server.auth import issue_token

SECRET = "abuse-harness-secret-of-at-least-32-bytes"
ATTACKER_NICE = 10  # the attacking client yields the CPU to the server it attacks


@dataclass
class AbuseSizes:
    probes: int = 200
    heavy_maps: int = 3000  # entries of the room whose views and restores are asked for
    heavy_seqs: int = 10  # updates it is written in (views ask for each seq)
    compute_callers: int = 20
    bulk_entries: int = 40  # the paged room's updates ...
    bulk_bytes: int = 1_000_000  # ... of this size
    page_readers: int = 4
    stalled: int = 20
    streams: int = 300  # one token's attempts
    expiring: int = 5
    ttl: int = 3


@dataclass
class AttackTally:
    """What the attacks got back."""

    statuses: dict[str, Counter[int]] = field(default_factory=dict)
    page_bytes: list[int] = field(default_factory=list)  # body sizes of feed/history pages
    streams_accepted: int = 0
    expired: int = 0
    expired_seconds: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["statuses"] = {name: dict(counts) for name, counts in self.statuses.items()}
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> AttackTally:
        statuses = {name: Counter(counts) for name, counts in raw.pop("statuses").items()}
        return cls(statuses=statuses, **raw)


def attacker_main(url: str, sizes: dict[str, int], conn: Connection, nice: int) -> None:
    """The attacker process's entry point (spawned by `harness.attacker_link.Attacker`)."""
    os.nice(nice)
    asyncio.run(_attack(url, AbuseSizes(**sizes), conn))


def serve_attacks(address: tuple[str, int], key: bytes) -> None:
    """Wait at `address` for harnesses on other machines (`RemoteAttacker`), one run at a
    time, until killed: each sends the server's URL and the sizes, then drives the attacks
    as a local harness drives its spawned process."""
    with Listener(address, authkey=key) as listener:
        print(f"ATTACKER listening on {address[0]}:{listener.address[1]}", flush=True)
        done = 0
        while True:
            try:
                conn = listener.accept()
            except (AuthenticationError, EOFError, OSError) as exc:  # a wrong key, a probe
                print(f"ATTACKER refused a connection: {exc!r}", file=sys.stderr, flush=True)
                continue
            with conn:
                url, sizes = conn.recv()
                try:
                    asyncio.run(_attack(url, AbuseSizes(**sizes), conn))
                except (EOFError, OSError):
                    pass  # the harness went away: its attacks ended with it
            done += 1
            print(f"ATTACKER run {done} on {url} ended", flush=True)


async def _attack(url: str, sizes: AbuseSizes, conn: Connection) -> None:
    tally = AttackTally()
    stop = asyncio.Event()
    compute = tally.statuses.setdefault("compute", Counter())
    pages = tally.statuses.setdefault("pages", Counter())
    attacks = [asyncio.create_task(_compute(url, sizes, compute, stop, i))
               for i in range(sizes.compute_callers)]  # fmt: skip
    attacks += [asyncio.create_task(_pages(url, pages, tally.page_bytes, stop, route,
                                           polite=i != IMPOLITE_READER))
                for i in range(sizes.page_readers) for route in ("changes", "history")]  # fmt: skip
    expiring = [asyncio.create_task(_expiring(url, sizes, tally, i)) for i in range(sizes.expiring)]
    held = await _streams(url, sizes, tally)
    try:
        conn.send("ready")
        await _told(conn, "finish")
        try:
            async with asyncio.timeout(sizes.ttl + 60):
                await asyncio.gather(*expiring)
        except TimeoutError:
            pass  # counted short: the parent reports the expiries that did not come
        conn.send("expired")
        await _told(conn, "stop")
    finally:
        stop.set()
        for task in [*attacks, *expiring]:
            task.cancel()
        await asyncio.gather(*attacks, *expiring, return_exceptions=True)
        await _release(held)
    conn.send(tally.as_dict())


async def _told(conn: Connection, word: str) -> None:
    said = await asyncio.to_thread(conn.recv)
    if said != word:
        raise RuntimeError(f"attacker told {said!r}, expected {word!r}")


async def _compute(
    url: str, sizes: AbuseSizes, statuses: Counter[int], stop: asyncio.Event, index: int
) -> None:
    reader = issue_token(SECRET, "heavy", read_only=True)  # one read-only token for all
    writer = issue_token(SECRET, "heavy", user=f"restorer-{index % 3}")
    async with aiohttp.ClientSession() as http:
        while not stop.is_set():
            seq = random.randint(1, sizes.heavy_seqs)
            if index % 5 == 4:
                request = http.post(f"{url}/v1/rooms/heavy/restore?token={writer}",
                                    json={"seq": seq})  # fmt: skip
            else:
                request = http.get(f"{url}/v1/rooms/heavy/json?at={seq}&token={reader}")
            async with request as response:
                await response.read()
                statuses[response.status] += 1
            if response.status == 503:
                await asyncio.sleep(0.05)  # a real client would wait Retry-After


PAGE_READERS = {"changes": "pager", "history": "auditor"}  # one user (and token) per route
IMPOLITE_READER = 0  # of each route's readers, the one that asks again at once after a 503


async def _pages(
    url: str,
    statuses: Counter[int],
    sizes_seen: list[int],
    stop: asyncio.Event,
    route: str,
    *,
    polite: bool,
) -> None:
    """Page through `route` from the start, again and again. Each route's readers are a
    user of their own: sharing one caller's page places, the quick history pages used to
    take them all and the change feed's megabyte pages were hardly ever read. A polite
    reader waits `Retry-After` after a 503, as a stock client does; an impolite one asks
    again at once, and all it should get for it is more 503s, each cheap to answer."""
    reader = issue_token(SECRET, "bulk", read_only=True, user=PAGE_READERS[route])
    async with aiohttp.ClientSession() as http:
        while not stop.is_set():
            after = 0
            while not stop.is_set():
                page_url = f"{url}/v1/rooms/bulk/{route}?after={after}&limit=1000&token={reader}"
                async with http.get(page_url) as response:
                    body = await response.read()
                    statuses[response.status] += 1
                    sizes_seen.append(len(body))
                if response.status == 503:  # past the caller's pages or bytes per second
                    if polite:
                        await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
                    continue  # the same page again
                if response.status != 200:
                    break
                page = _page_head(body)
                if not page.get("more"):
                    break
                after = page["next_after"]


def _page_head(body: bytes) -> dict[str, Any]:
    """A page's fields without decoding its entries (megabytes of base64 the attacker
    does not need; parsing them would only take CPU from the server on the same host)."""
    cut = body.find(b', "entries": [')
    if cut < 0:
        return dict(json.loads(body))
    return dict(json.loads(body[:cut] + b"}"))


def _stalled_stream(url: str, token: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    sock.sendall(
        f"GET /v1/rooms/bulk/changes?after=0&token={token} HTTP/1.1\r\nHost: x\r\n"
        "Accept: text/event-stream\r\n\r\n".encode()
    )
    return sock


async def _streams(url: str, sizes: AbuseSizes, tally: AttackTally) -> list[Any]:
    """One token's streams (kept open, read by nobody) and stalled raw sockets."""
    token = issue_token(SECRET, "bulk", read_only=True, user="hoarder")
    held: list[Any] = []
    http = aiohttp.ClientSession()
    held.append(http)
    statuses = tally.statuses.setdefault("streams", Counter())
    end = {"Accept": "text/event-stream", "Last-Event-ID": str(sizes.bulk_entries)}
    for _ in range(sizes.streams):  # idle streams from the end of the log, held open
        response = await http.get(f"{url}/v1/rooms/bulk/changes?token={token}", headers=end)
        statuses[response.status] += 1
        if response.status == 200:
            tally.streams_accepted += 1
            held.append(response)
        else:
            response.release()
    stalled_token = issue_token(SECRET, "bulk", read_only=True, user="staller")
    for _ in range(sizes.stalled):
        held.append(await asyncio.to_thread(_stalled_stream, url, stalled_token))
    return held


async def _expiring(url: str, sizes: AbuseSizes, tally: AttackTally, index: int) -> None:
    token = issue_token(SECRET, "heavy", read_only=True, user=f"brief-{index}", ttl=sizes.ttl)
    opened = time.time()
    timeout = aiohttp.ClientTimeout(total=sizes.ttl + 30)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        stream_url = f"{url}/v1/rooms/heavy/changes?token={token}"
        async with http.get(stream_url, headers={"Accept": "text/event-stream"}) as response:
            async for line in response.content:
                if line.startswith(b"event: expired"):
                    tally.expired += 1
                    tally.expired_seconds.append(time.time() - opened)


async def _release(held: list[Any]) -> None:
    for item in held:
        if isinstance(item, socket.socket):
            item.close()
        elif isinstance(item, aiohttp.ClientResponse):
            item.close()
    for item in held:
        if isinstance(item, aiohttp.ClientSession):
            await item.close()
