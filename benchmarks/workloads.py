"""The workloads A-F, T and BIG: what each asks the load generator to do, per size mode.

Each workload function gets a freshly started server and returns its cases;
a case whose ``failures`` is non-empty (lost updates, divergence, closed
connections) is a failed run, not a number.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
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
    typist_rooms: tuple[int, ...] = (25, 50, 100, 200, 400)
    typist_s: float = 10.0
    busy_s: float = 10.0
    big_mb: float = 17.0


SIZES: dict[str, Sizes] = {
    "quick": Sizes(
        (10, 50),
        60,
        10.0,
        10,
        2.0,
        20,
        40,
        2_000,
        100,
        1.0,
        3.0,
        5,
        20,
        40,
        50,
        2.0,
        typist_rooms=(25, 50),
        typist_s=3.0,
        busy_s=3.0,
        big_mb=2.0,
    ),
    "default": Sizes(
        (10, 50), 300, 15.0, 10, 5.0, 100, 100, 20_000, 1_000, 2.0, 6.0, 20, 100, 100, 200, 5.0
    ),
    "full": Sizes(
        (10, 50), 600, 30.0, 10, 10.0, 100, 200, 200_000, 1_000, 2.0, 6.0, 20, 100, 200, 200, 10.0
    ),
}


def with_big_mb(sizes: Sizes, mb: float | None) -> Sizes:
    """The sizes with another big-room document size (``--big-mb``)."""
    return sizes if mb is None else replace(sizes, big_mb=mb)


def _cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from the first line of /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


# --quiet-wait: before each load generator run, wait up to this many seconds
# for the rest of the machine to use less than QUIET_CORES (the machine is shared).
QUIET = {"wait_s": 0.0}
QUIET_CORES = 0.5


def _busy_cores(interval_s: float = 1.0) -> float:
    busy0, total0 = _cpu_ticks()
    time.sleep(interval_s)
    busy1, total1 = _cpu_ticks()
    return (os.cpu_count() or 1) * (busy1 - busy0) / max(1, total1 - total0)


def _wait_quiet() -> tuple[float, float]:
    """(seconds waited, busy cores when the run started)."""
    t0 = time.monotonic()
    busy = _busy_cores()
    while busy > QUIET_CORES and time.monotonic() - t0 < QUIET["wait_s"]:
        busy = _busy_cores()
    return time.monotonic() - t0, busy


def _run(server: RunningServer, workload: str, timeout_s: float, **cfg: Any) -> Result:
    """One load generator run, with the machine's load around it.

    ``machine_busy_cores`` is the whole machine's CPU use during the run (in
    cores); ``other_busy_cores`` is that minus the server and the load generator:
    whatever else was running on the machine at the same time.
    """
    waited, busy_before = _wait_quiet() if QUIET["wait_s"] > 0 else (0.0, _busy_cores(0.5))
    load_before = os.getloadavg()[0]
    busy0, total0 = _cpu_ticks()
    result = run_loadgen(
        {"workload": workload, "server": server.loadgen_server(), **cfg}, timeout_s
    )
    busy1, total1 = _cpu_ticks()
    result.setdefault("loadgen_processes", 1)
    cores = os.cpu_count() or 1
    if total1 > total0:
        busy_cores = cores * (busy1 - busy0) / (total1 - total0)
        ours = float(result.get("server_cpu_s") or 0) + float(result.get("loadgen_cpu_s") or 0)
        wall = float(result.get("wall_s") or 0)
        result["machine_busy_cores"] = busy_cores
        result["loadavg_1m_before"] = load_before
        result["busy_cores_before"] = busy_before
        result["quiet_wait_s"] = waited
        if wall > 0:
            result["other_busy_cores"] = max(0.0, busy_cores - ours / wall)
    return result


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
    persists = server.kind.durable
    expect = live["expect_chars"] if persists else None
    cfg: dict[str, Any] = {"roomPrefix": "cold-"}
    if expect is not None:
        cfg["expectChars"] = expect
    after = _run(server, "join", 600, **cfg)
    case["failures"] += after.pop("failures", [])
    case["metrics"].update(
        restart_sync_ms=after.get("content_ms") if after.get("chars") else None,
        restart_sync_step_ms=after.get("sync_ms"),
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
    params = {"ack": "1"} if server.kind.base == "ours" else {}
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


# A step is client-bound when a load generator process (one Node thread) used most
# of a core or the edits left late against their schedule: its latency then
# includes the client's own queueing, not only the server's.
CLIENT_BOUND_CPU_PCT = 80.0
CLIENT_BOUND_LAG_MS = 20.0


def _client_bound(r: Result) -> bool:
    cpu = float(r.get("loadgen_cpu_pct") or 0)
    lag = float(r.get("send_lag_p99_ms") or 0)
    return cpu >= CLIENT_BOUND_CPU_PCT or lag >= CLIENT_BOUND_LAG_MS


TYPIST_RATE = 5  # edits/s per client
BUSY_CLIENTS, BUSY_RATE = 10, 20
JITTER = 0.5  # every gap is the mean gap x U(0.5, 1.5)
# Typing before the measured window (nothing of it counted): the first second's burst of
# every process compiling its hot code at once is not the steady state being measured.
WARMUP_S = 2
P99_STOP_MS = 1000.0
# Rooms of typists one load generator process drives: one Node process is one core, and
# from about 100 rooms a single one was busy enough to set the latency it measured.
ROOMS_PER_LOADGEN = 50


def loadgen_processes(rooms: int) -> int:
    """How many load generator processes share a T step's rooms."""
    return max(1, -(-rooms // ROOMS_PER_LOADGEN))


def typists_step(
    server: RunningServer, sizes: Sizes, seed: int, rooms: int, processes: int | None = None
) -> Case:
    """One step of T: ``rooms`` rooms x 3 clients typing for ``sizes.typist_s``, over
    ``processes`` load generator processes (default: one per ROOMS_PER_LOADGEN rooms)."""
    r = _run(
        server,
        "edits",
        900,
        rooms=rooms,
        clientsPerRoom=3,
        maxEdits=int(TYPIST_RATE * (sizes.typist_s + WARMUP_S) * 2) + 10,
        rate=TYPIST_RATE,
        warmupMs=WARMUP_S * 1000,
        jitter=JITTER,
        editText="x",
        durationMs=sizes.typist_s * 1000,
        seed=seed,
        roomPrefix=f"typists{rooms}-",
        connectTimeoutMs=120_000,
        processes=processes or loadgen_processes(rooms),
    )
    return _case(f"{rooms} rooms x 3 typists", r, rooms=rooms, client_bound=_client_bound(r))


def typists(server: RunningServer, sizes: Sizes, seed: int) -> list[Case]:
    """T: R rooms x 3 clients typing one character 5 times/s (jittered), R stepped up.

    Stepping stops after a step that failed, or whose p99 passed 1 s while the
    load client kept up. Each step and the busy room get a restarted server
    (same data directory).
    """
    cases: list[Case] = []
    for i, rooms in enumerate(sizes.typist_rooms):
        if i:
            server.restart()
        case = typists_step(server, sizes, seed, rooms)
        cases.append(case)
        p99 = case["metrics"].get("p99_ms")
        if case["failures"] or p99 is None:
            break
        # A p99 past 1 s stops the stepping when the server is what is slow; when
        # the load client was the bottleneck (starved of CPU on a shared machine,
        # or busy itself) the step says little about the server: go on, marked.
        if float(p99) > P99_STOP_MS and not case["metrics"]["client_bound"]:
            break
    server.restart()
    r = _run(
        server,
        "edits",
        300,
        rooms=1,
        clientsPerRoom=BUSY_CLIENTS,
        maxEdits=int(BUSY_RATE * (sizes.busy_s + WARMUP_S) * 2) + 10,
        rate=BUSY_RATE,
        warmupMs=WARMUP_S * 1000,
        jitter=JITTER,
        editText="x",
        durationMs=sizes.busy_s * 1000,
        seed=seed,
        roomPrefix="busy-",
    )
    name = f"1 busy room: {BUSY_CLIENTS} clients x {BUSY_RATE} edits/s"
    cases.append(_case(name, r, rooms=1, client_bound=_client_bound(r)))
    return cases


BIG_ITEMS_PER_17MB = 80_000
BIG_TEXT_PER_17MB = 2_000_000


def big_room(server: RunningServer, sizes: Sizes, seed: int) -> list[Case]:
    """BIG: a stock y-websocket client builds a large room; restart; join it cold.

    17 MB: 80,000 array items (strings) and 2,000,000 characters of text; other
    sizes scale both counts. While one client and then four at once join the
    cold room, a small room carries one edit every 20 ms.
    """
    scale = sizes.big_mb / 17.0
    items = max(1000, round(BIG_ITEMS_PER_17MB * scale))
    text = max(16_384, round(BIG_TEXT_PER_17MB * scale))
    # Each string item costs its length + about 3 bytes in the encoded document.
    item_bytes = max(16, int((sizes.big_mb * 1e6 - text) / items) - 3)
    build = _run(
        server,
        "bigbuild",
        3600,
        items=items,
        itemBytes=item_bytes,
        textChars=text,
        seed=seed,
        roomPrefix="big-",
    )
    last_item = build.pop("last_item", None)
    build.pop("room", None)
    name = f"{sizes.big_mb:g} MB room"
    case = _case(name, build)
    if case["failures"] or last_item is None:
        return [case]
    server.restart()
    before = server.metrics_text()
    join = _run(
        server,
        "bigjoin",
        3600,
        items=items,
        textChars=text,
        lastItem=last_item,
        seed=seed,
        roomPrefix="big-",
    )
    case["failures"] += join.pop("failures", [])
    case["metrics"].update({k: v for k, v in join.items() if not isinstance(v, dict)})
    for phase in ("baseline", "during", "after"):
        for key, value in (join.get(f"small_{phase}") or {}).items():
            case["metrics"][f"small_{phase}_{key}"] = value
    case["metrics"]["build_rss_mib"] = build.get("rss_after_build_mib")
    case["metrics"]["rss_peak_over_doc"] = _peak_over_doc(join, build.get("doc_bytes"))
    after = server.metrics_text()
    if before is not None and after is not None:
        case["metrics"].update(_server_side(before, after))
    return [case]


def _peak_over_doc(join: Result, doc_bytes: Any) -> float | None:
    """Peak RSS growth since the restart, in multiples of the document's size."""
    peak, start = join.get("rss_peak_mib"), join.get("rss_start_mib")
    if not isinstance(doc_bytes, int | float) or not doc_bytes or peak is None or start is None:
        return None
    return float((peak - start) * 2**20 / doc_bytes)


_BUCKET = re.compile(r'^(performer_\w+)_bucket\{le="([^"]+)"\}\s+([0-9.eE+]+)$', re.M)


def _buckets(text: str, name: str) -> list[tuple[float, float]]:
    """A histogram's cumulative (upper bound, count) pairs from Prometheus text."""
    return [
        (float(le), float(count)) for metric, le, count in _BUCKET.findall(text) if metric == name
    ]


def _server_side(before: str, after: str) -> dict[str, Any]:
    """What the server's own histograms saw during the join run (baseline, cold join,
    crowd, tail): commits of every room, and how late the event loop ran timers."""
    out: dict[str, Any] = {}
    for name, key in (
        ("performer_commit_seconds", "commit"),
        ("performer_loop_stall_seconds", "loop_stall"),
    ):
        old = dict(_buckets(before, name))
        now = [(le, count - old.get(le, 0.0)) for le, count in _buckets(after, name)]
        total = now[-1][1] if now else 0.0
        if not total:
            continue
        out[f"{key}_count"] = total
        # Upper bounds: the bucket holding the 99th percentile, and the highest non-empty one.
        p99 = next(le for le, c in now if c >= 0.99 * total)
        out[f"{key}_p99_le_ms"] = p99 * 1000 if p99 != float("inf") else None
        counts = [
            (le, c - prev)
            for (le, c), prev in zip(now, [0.0] + [c for _, c in now][:-1], strict=True)
        ]
        seen = [(le, c) for le, c in counts if c > 0]
        top = seen[-1][0] if seen else 0.0
        out[f"{key}_max_le_ms"] = top * 1000 if top != float("inf") else None
        out[f"{key}_histogram"] = " ".join(f"≤{le * 1000:g}ms:{int(c)}" for le, c in seen)
    return out


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
    "T": ("typists", typists),
    "BIG": ("big room, cold", big_room),
}

# Workloads that need a server that keeps rooms across a restart.
NEEDS_DURABLE = {"BIG"}
