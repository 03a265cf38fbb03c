"""Aggregate repeats (median with min/max) and write JSON lines and Markdown."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.servers import KINDS

Row = dict[str, Any]

# Per workload: (metric key, column title, decimals). The table shows these;
# the JSON lines keep every metric.
COLUMNS: dict[str, list[tuple[str, str, int]]] = {
    "A": [
        ("updates_per_s", "updates/s", 0),
        ("deliveries_per_s", "deliveries/s", 0),
        ("p50_ms", "p50 ms", 1),
        ("p99_ms", "p99 ms", 1),
        ("converge_ms", "converge ms", 1),
        ("server_cpu_us_per_update", "server CPU µs/update", 0),
    ],
    "C": [
        ("populate_updates_per_s", "fill updates/s", 0),
        ("sync_ms", "join ms", 1),
        ("bytes_received", "join bytes", 0),
        ("restart_sync_ms", "join after restart ms", 1),
        ("restart_chars", "chars after restart", 0),
    ],
    "D": [
        ("rss_before_mib", "RSS empty MiB", 0),
        ("rss_loaded_mib", "RSS loaded MiB", 0),
        ("rss_idle_mib", "RSS idle MiB", 0),
        ("load_s", "load s", 2),
        ("persisted_after_idle", "content kept after idle", 0),
    ],
    "E": [
        ("updates_per_s", "updates/s acknowledged", 0),
        ("p99_ms", "p99 ms", 1),
        ("mean_commit_batch", "mean commit batch", 1),
        ("server_cpu_us_per_update", "server CPU µs/update", 0),
    ],
    "F": [
        ("sends", "states sent", 0),
        ("delivered_per_s", "delivered/s", 0),
        ("expected", "1:1 relay would deliver", 0),
        ("server_cpu_pct", "server CPU %", 0),
        ("converged", "final states seen", 0),
    ],
}
COLUMNS["B"] = COLUMNS["A"]
COLUMNS["T"] = [
    ("clients", "typists", 0),
    ("updates_per_s", "edits/s", 0),
    ("server_cpu_pct", "server CPU %", 0),
    ("server_cpu_us_per_update", "server CPU µs/edit", 0),
    ("p50_ms", "p50 ms", 1),
    ("p99_ms", "p99 ms", 1),
    ("max_ms", "max ms", 0),
    ("lost", "lost", 0),
    ("converged", "converged", 0),
    ("loadgen_processes", "load processes", 0),
    ("loadgen_cpu_pct", "busiest load process CPU %", 0),
    ("send_lag_p99_ms", "send lag p99 ms", 1),
    ("other_busy_cores", "other load (cores)", 2),
]
COLUMNS["BIG"] = [
    ("doc_bytes", "document MB", 1),
    ("cold_complete_ms", "cold first sync ms", 0),
    ("crowd_all_complete_ms", "4 joining at once ms", 0),
    ("small_baseline_p99_ms", "small room p99 ms before", 1),
    ("small_p99_ms", "small room p99 ms during", 1),
    ("small_max_ms", "small room max ms during", 0),
    ("rss_peak_mib", "peak server RSS MiB", 0),
    ("rss_peak_over_doc", "RSS growth / doc size", 1),
    ("commit_p99_le_ms", "commit p99 ms (≤ bucket)", 1),
    ("loop_stall_max_le_ms", "loop stall max ms (≤ bucket)", 0),
    ("other_busy_cores", "other load (cores)", 2),
]
# Cells scaled before printing (bytes -> MB).
SCALE = {"doc_bytes": 1e-6}


def machine() -> dict[str, Any]:
    """Cores, CPU model, memory, versions and the date, for the report header."""
    model = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=False)
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "arch": platform.machine(),  # uname -m
        "nproc": len(os.sched_getaffinity(0)),  # nproc
        "cores": os.cpu_count(),
        "cpu": model,
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "memory_gib": round(mem_gib, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "node": node.stdout.strip(),
    }


def git_head() -> str:
    """HEAD's short sha, with "+ local changes" when engine/ or server/ differ from it."""
    repo = Path(__file__).resolve().parents[1]
    git = ["git", "-C", str(repo)]
    head = subprocess.run(
        [*git, "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "--", "engine", "server"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return head + (" + local changes" if dirty else "")


def git_commit(ref: str) -> str:
    """The full sha of a ref (the commit whose server is measured)."""
    repo = Path(__file__).resolve().parents[1]
    return subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--verify", f"{ref}^{{commit}}"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()


def aggregate(raw: list[Row]) -> list[Row]:
    """One row per (workload, case, server): median/min/max over repeats."""
    groups: dict[tuple[str, str, str], list[Row]] = {}
    for r in raw:
        groups.setdefault((r["workload"], r["case"], r["server"]), []).append(r)
    rows = []
    for (workload, case, server), runs in groups.items():
        failures = [f for r in runs for f in r["failures"]]
        keys = sorted({k for r in runs for k in r["metrics"]})
        stats: dict[str, Any] = {}
        for key in keys:
            values = [r["metrics"].get(key) for r in runs]
            stats[key] = _summarise(values)
        rows.append(
            {
                "workload": workload,
                "case": case,
                "server": server,
                "repeats": len(runs),
                "ok": not failures,
                "failures": failures,
                "metrics": stats,
            }
        )
    return rows


def _summarise(values: list[Any]) -> Any:
    if all(isinstance(v, bool) for v in values):
        return {"all": all(values), "any": any(values)}
    nums = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if not nums:
        return None
    return {"median": statistics.median(nums), "min": min(nums), "max": max(nums), "n": len(nums)}


def _cell(stat: Any, decimals: int, scale: float = 1.0) -> str:
    if stat is None:
        return "n/a"
    if "all" in stat:
        return "yes" if stat["all"] else ("some" if stat["any"] else "no")
    fmt = f"{{:,.{decimals}f}}"
    text = fmt.format(stat["median"] * scale)
    if stat["n"] > 1 and stat["min"] != stat["max"]:
        text += f" ({fmt.format(stat['min'] * scale)}–{fmt.format(stat['max'] * scale)})"
    return text


def _row_cells(row: Row, cols: list[tuple[str, str, int]]) -> list[str]:
    cells = []
    for key, _, dec in cols:
        stat = row["metrics"].get(key)
        if key == "restart_sync_ms" and not KINDS[row["server"]].durable:
            cells.append("not kept (persists nothing in this setup)")
        elif key == "restart_chars" and not KINDS[row["server"]].durable:
            cells.append("0 (by construction)")
        else:
            cells.append(_cell(stat, dec, SCALE.get(key, 1.0)))
    if row["workload"] == "T" and (row["metrics"].get("client_bound") or {}).get("any"):
        cells[0] += " (client-bound)"
    return cells


def provenance(rows: list[Row]) -> str:
    """When, at which commit, on what machine and with what command these rows were measured."""
    seen: dict[str, list[str]] = {}
    for r in rows:
        m = r.get("machine", {})
        key = json.dumps(
            {
                k: m.get(k)
                for k in ("date", "ours", "command", "loop", "arch", "nproc", "cores", "cpu")
            }
        )
        label = KINDS[r["server"]].label
        if label not in seen.setdefault(key, []):
            seen[key].append(label)
    lines = []
    for key, labels in seen.items():
        m = json.loads(key)
        loop = f"; Python servers on {m['loop']}" if m.get("loop") else ""
        arch = f"{m['arch']}, " if m.get("arch") else ""
        nproc = m.get("nproc") or m.get("cores") or "?"
        lines.append(
            f"_{', '.join(labels)}: {m['date']}, Performer {m.get('ours')}, "
            f"{arch}{nproc} cores {m.get('cpu')}{loop}; `{m.get('command') or 'n/a'}`._"
        )
    return "\n".join(lines) + "\n"


def markdown(rows: list[Row], titles: dict[str, str]) -> str:
    """One table per workload; failed runs say FAILED and list why below."""
    out: list[str] = []
    notes: list[str] = []
    order = [w for w in titles if any(r["workload"] == w for r in rows)]
    for workload in order:
        cols = COLUMNS[workload]
        mine = [r for r in rows if r["workload"] == workload]
        out.append(f"### {workload}. {titles[workload]}\n")
        out.append(provenance(mine))
        if workload in NOTES:
            out.append(NOTES[workload])
        out.append("| case | server | " + " | ".join(c[1] for c in cols) + " |")
        out.append("|---|---|" + "---:|" * len(cols))
        for r in mine:
            label = KINDS[r["server"]].label
            if r["ok"]:
                cells = _row_cells(r, cols)
            else:
                notes.append(
                    f"- {workload} / {r['case']} / {label}: "
                    + "; ".join(f.splitlines()[0] for f in r["failures"][:3])
                )
                cells = [f"FAILED [{len(notes)}]"] + [""] * (len(cols) - 1)
            out.append(f"| {r['case']} | {label} | " + " | ".join(cells) + " |")
        out.append("")
    if notes:
        out.append("Failed runs (lost updates, divergence or errors; not numbers):\n")
        out += [f"{i}. {n[2:]}" for i, n in enumerate(notes, 1)]
        out.append("")
    return "\n".join(out)


NOTES = {
    "T": (
        "Each step: a restarted server, R rooms x 3 clients, each typing one character "
        "5 times/s (gaps jittered ±50 %) for the step's window; latency is send to "
        "apply at every other client of the room. Stepping stops after a step that "
        "failed, or whose p99 passed 1 s while the load client kept up. "
        "The clients run in one load generator process (one Node thread) per 50 rooms. "
        "**client-bound**: the busiest load process used ≥ 80 % of a core, or the "
        "edits left ≥ 20 ms late at p99 (busy, or starved of CPU by other work on "
        "the machine), so the client's own queueing is part of the latency. `other "
        "load` = the machine's busy cores minus the server's and the load processes': "
        "other work sharing the machine during the step.\n"
    ),
    "BIG": (
        "A stock y-websocket client (`WebsocketProvider`) builds the room, the server "
        "restarts, then one client joins the cold room and, 1 s after it has everything, "
        "four join at once (each client its own thread). Times run from opening the "
        "socket until the client holds the whole document (every item and character), "
        "not until the first SyncStep2 (y-websocket + y-leveldb answers that before the "
        "document is loaded). The small room: one edit every 20 ms, latency read at a "
        'second client; "before" = the 2 s before the big room is opened, "during" = '
        "from the first join until the four have everything. Peak RSS is the server "
        "process's VmHWM since the restart.\n"
    ),
}


def read_jsonl(path: Path) -> list[Row]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# Workloads whose cases are separate runs (BIG at 17 MB, at 100 MB): replaced case by case.
BY_CASE = {"BIG"}


def _merge_key(row: Row) -> tuple[str, str, str]:
    return (row["workload"], row["server"], row["case"] if row["workload"] in BY_CASE else "")


def merge_jsonl(path: Path, rows: list[Row], header: dict[str, Any]) -> None:
    """Replace the rows of every (workload, server) measured now; keep all others."""
    fresh = {_merge_key(r) for r in rows}
    kept = [r for r in read_jsonl(path) if _merge_key(r) not in fresh]
    write_jsonl(path, kept + [{**r, "machine": header} for r in rows], None)


def persistence_note(servers: list[str]) -> str:
    lines = ["| server | persists |", "|---|---|"]
    lines += [f"| {KINDS[s].label} | {KINDS[s].persists} |" for s in servers]
    return "\n".join(lines)


def write_jsonl(path: Path, rows: list[Row], header: dict[str, Any] | None) -> None:
    with path.open("w") as f:
        for row in rows:
            f.write(json.dumps(row if header is None else {**row, "machine": header}) + "\n")
