"""How long a refused edit takes to come back undone on its sender's screen.

    python -m benchmarks.rules_undo [--attempts 200] [--messages 100]

One `performer serve --rules examples/chat-rules.toml` (with auth, so the rules that name
users hold) on a fresh data directory. `ann` posts `--messages` messages; `bo`, on a raw
y-websocket connection, then tries `--attempts` times, one after another, to delete one
of ann's messages. Each attempt is timed from the send until bo's own document holds the
message again (the undo, merged into the commit and relayed to him) — the latency an
attacker's or a mistaken user's screen shows. The permission-denied reason that follows
is awaited too, so attempts never overlap.

Prints one JSON line (p50/p99 in ms, the server's CPU seconds per attempt) and appends it
to results/rules_undo.jsonl (`--results DIR` to write elsewhere).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from pycrdt import Array, Doc, Map

from benchmarks.ops_costs import cpu_seconds
from benchmarks.paths import REPO, RESULTS
from engine.protocol import PermissionDeniedMessage, Update
from harness.process import ServerProcess
from harness.wire import WireClient, connect
from server.auth import issue_token

SECRET = "rules-undo-benchmark-" + "0123456789abcdef" * 4
ROOM = "undo"
RULES = REPO / "examples" / "chat-rules.toml"
DEADLINE = 30.0


def _change(doc: Doc[Any], edit: Any) -> bytes:
    before = doc.get_state()
    with doc.transaction():
        edit(doc.get("messages", type=Array))
    return bytes(doc.get_update(before))


async def _post(url: str, count: int) -> None:
    token = issue_token(SECRET, ROOM, user="ann")
    async with connect(url, ROOM, token=token, ack=True) as ann:
        await ann.sync()
        for number in range(count):
            message = Map({"user": "ann", "text": f"m{number}", "reactions": Map()})
            await ann.send(Update(_change(ann.doc, lambda m, msg=message: m.append(msg))))
        await ann.wait_saved(count, DEADLINE)


async def _until(client: WireClient, done: Any) -> None:
    async with asyncio.timeout(DEADLINE):
        while not done():
            if await client.recv(DEADLINE) is None:
                raise AssertionError(f"closed ({client.close_code}) {client.close_reason}")


def _denied(client: WireClient) -> int:
    return sum(isinstance(message, PermissionDeniedMessage) for message in client.received)


async def _attempts(url: str, count: int, messages: int) -> list[float]:
    token = issue_token(SECRET, ROOM, user="bo")
    latencies: list[float] = []
    async with connect(url, ROOM, token=token) as bo:
        await bo.sync()
        held = bo.doc.get("messages", type=Array)
        await _until(bo, lambda: len(held) == messages)
        for attempt in range(count):
            at = attempt % messages
            started = time.perf_counter()
            await bo.send(Update(_change(bo.doc, lambda m, at=at: m.__delitem__(at))))
            await _until(bo, lambda: len(held) == messages)
            latencies.append(time.perf_counter() - started)
            await _until(bo, lambda attempt=attempt: _denied(bo) > attempt)
    return latencies


def run(attempts: int, messages: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess(Path(tmp) / "data", ["--auth-secret", SECRET, "--rules", str(RULES)])
        server.start()
        try:
            assert server.process is not None
            asyncio.run(_post(server.http_url, messages))
            cpu_before = cpu_seconds(server.process.pid)
            latencies = asyncio.run(_attempts(server.http_url, attempts, messages))
            cpu = cpu_seconds(server.process.pid) - cpu_before
        finally:
            server.stop()
    cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
    return {"what": "rules_undo", "attempts": attempts, "messages": messages,
            "p50_ms": round(cuts[49] * 1e3, 2), "p99_ms": round(cuts[98] * 1e3, 2),
            "cpu_ms_per_attempt": round(cpu / attempts * 1e3, 3)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--attempts", type=int, default=200)
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    row = run(args.attempts, args.messages)
    line = json.dumps({**row, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    print(line)
    args.results.mkdir(parents=True, exist_ok=True)
    with open(args.results / "rules_undo.jsonl", "a") as out:
        out.write(line + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
