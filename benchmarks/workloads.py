"""The workloads A-F: what each asks the load generator to do, per size mode.

Each workload function gets a freshly started server and returns its cases;
a case whose ``failures`` is non-empty (lost updates, divergence, closed
connections) is a failed run, not a number.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmarks.loadgen import Result, run_loadgen
from benchmarks.servers import RunningServer

Case = dict[str, Any]


@dataclass(frozen=True)
class Sizes:
    """Every bound of every workload, for one mode (quick / default / full)."""

    fanout_clients: tuple[int, ...]
    fanout_edits: int
    window_s: float
    typing_clients: int
    typing_s: float
    b_rooms: int
    b_edits: int
    cold_updates: int
    memory_rooms: int
    idle_unload_s: float
    idle_wait_s: float
    ingest_writers: int
    ingest_rooms: int
    ingest_edits: int
    presence_clients: int
    presence_s: float


SIZES: dict[str, Sizes] = {
    "quick": Sizes((10, 50), 60, 10.0, 10, 2.0, 20, 40, 2_000, 100, 1.0, 3.0, 5, 20, 40, 50, 2.0),
    "default": Sizes(
        (10, 50), 300, 15.0, 10, 5.0, 100, 100, 20_000, 1_000, 2.0, 6.0, 20, 100, 100, 200, 5.0
    ),
    "full": Sizes(
        (10, 50), 600, 30.0, 10, 10.0, 100, 200, 200_000, 1_000, 2.0, 6.0, 20, 100, 200, 200, 10.0
    ),
}


def _run(server: RunningServer, workload: str, timeout_s: float, **cfg: Any) -> Result:
    return run_loadgen({"workload": workload, "server": server.loadgen_server(), **cfg}, timeout_s)


def _case(name: str, result: Result, **extra: Any) -> Case:
    failures = list(result.pop("failures", []))
    return {"case": name, "metrics": {**result, **extra}, "failures": failures}


def fanout(server: RunningServer, sizes: Sizes, seed: int) -> list[Case]:
    """A: one room, every client edits at full speed; then a typing-pace variant."""
    cases = []
    for n in sizes.fanout_clients:
        r = _run(
            server,
            "edits",
            300,
            rooms=1,
            clientsPerRoom=n,
            maxEdits=sizes.fanout_edits,
            durationMs=sizes.window_s * 1000,
            seed=seed,
            roomPrefix=f"fan{n}-",
            window=4,
        )
        cases.append(_case(f"1 room x {n} clients, full speed", r))
    n = sizes.typing_clients
    r = _run(
        server,
        "edits",
        300,
        rooms=1,
        clientsPerRoom=n,
        maxEdits=100_000,
        rate=20,
        durationMs=sizes.typing_s * 1000,
        seed=seed,
        roomPrefix="typing-",
    )
    cases.append(_case(f"1 room x {n} clients, 20 updates/s each", r))
    return cases


def many_rooms(server: RunningServer, sizes: Sizes, seed: int) -> list[Case]:
    """B: many rooms of two clients, both editing at full speed."""
    r = _run(
        server,
        "edits",
        300,
        rooms=sizes.b_rooms,
        clientsPerRoom=2,
        maxEdits=sizes.b_edits,
        durationMs=sizes.window_s * 1000,
        seed=seed,
        roomPrefix="many-",
        window=4,
    )
    return [_case(f"{sizes.b_rooms} rooms x 2 clients, full speed", r)]


def cold_sync(server: RunningServer, sizes: Sizes, seed: int) -> list[Case]:
    """C: a room with N logged updates; a new client joins, live and after a restart."""
    n = sizes.cold_updates
    live = _run(server, "coldsync", 3600, updates=n, seed=seed, roomPrefix="cold-")
    case = _case(f"join a room of {n:,} updates", live)
    if case["failures"]:
        return [case]
    server.restart()
    persists = server.kind.name == "ours"
    expect = live["expect_chars"] if persists else None
    cfg: dict[str, Any] = {"roomPrefix": "cold-"}
    if expect is not None:
        cfg["expectChars"] = expect
    after = _run(server, "join", 600, **cfg)
    case["failures"] += after.pop("failures", [])
    case["metrics"].update(
        restart_sync_ms=after.get("sync_ms") if after.get("chars") else None,
        restart_bytes=after.get("bytes_received"),
        restart_chars=after.get("chars"),
        restart_server_cpu_s=after.get("server_cpu_s"),
    )
    return [case]


def memory(server: RunningServer, sizes: Sizes, seed: int) -> list[Case]:
    """D: RSS with many rooms loaded (one client each), then after all clients leave."""
    r = _run(
        server,
        "memory",
        600,
        rooms=sizes.memory_rooms,
        editsPerRoom=20,
        idleWaitMs=sizes.idle_wait_s * 1000,
        seed=seed,
        roomPrefix="mem-",
    )
    return [_case(f"{sizes.memory_rooms} rooms", r)]


def ingest(server: RunningServer, sizes: Sizes, seed: int) -> list[Case]:
    """E: many writers (plus one reading observer per room); ours also waits for saved acks."""
    params = {"ack": "1"} if server.kind.name == "ours" else {}
    cases = []
    shapes = [(1, sizes.ingest_writers), (sizes.ingest_rooms, 1)]
    for rooms, writers in shapes:
        before = _commit_stats(server)
        r = _run(
            server,
            "edits",
            600,
            rooms=rooms,
            clientsPerRoom=writers + 1,
            writersPerRoom=writers,
            maxEdits=sizes.ingest_edits,
            params=params,
            durationMs=sizes.window_s * 1000,
            seed=seed,
            roomPrefix=f"ingest{rooms}-",
            window=8,
        )
        after = _commit_stats(server)
        extra = {}
        if before and after and after[1] > before[1]:
            extra = {
                "commits": after[1] - before[1],
                "mean_commit_batch": (after[0] - before[0]) / (after[1] - before[1]),
            }
        cases.append(_case(f"{rooms} room(s) x {writers} writer(s) + 1 reader", r, **extra))
    return cases


def presence(server: RunningServer, sizes: Sizes, seed: int) -> list[Case]:
    """F: every client sends awareness 10 times/s; rooms of 10."""
    r = _run(
        server,
        "presence",
        300,
        clients=sizes.presence_clients,
        roomSize=10,
        rate=10,
        durationMs=sizes.presence_s * 1000,
        seed=seed,
        roomPrefix="presence-",
    )
    return [_case(f"{sizes.presence_clients} clients in rooms of 10, 10 states/s each", r)]


_BATCH = re.compile(r"^performer_commit_batch_size_(sum|count)\s+([0-9.eE+]+)$", re.M)


def _commit_stats(server: RunningServer) -> tuple[float, float] | None:
    """(sum, count) of the commit batch size histogram, if the server exposes it."""
    text = server.metrics_text()
    if text is None:
        return None
    found = {kind: float(value) for kind, value in _BATCH.findall(text)}
    if "sum" not in found or "count" not in found:
        return None
    return found["sum"], found["count"]


Workload = Callable[[RunningServer, Sizes, int], list[Case]]

WORKLOADS: dict[str, tuple[str, Workload]] = {
    "A": ("fan-out in one room", fanout),
    "B": ("many rooms", many_rooms),
    "C": ("cold sync", cold_sync),
    "D": ("memory", memory),
    "E": ("durable ingest", ingest),
    "F": ("presence", presence),
}
