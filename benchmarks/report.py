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
        "cores": os.cpu_count(),
        "cpu": model,
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


def _cell(stat: Any, decimals: int) -> str:
    if stat is None:
        return "n/a"
    if "all" in stat:
        return "yes" if stat["all"] else ("some" if stat["any"] else "no")
    fmt = f"{{:,.{decimals}f}}"
    text = fmt.format(stat["median"])
    if stat["n"] > 1 and stat["min"] != stat["max"]:
        text += f" ({fmt.format(stat['min'])}–{fmt.format(stat['max'])})"
    return text


def markdown(rows: list[Row], titles: dict[str, str]) -> str:
    """One table per workload; failed runs say FAILED and list why below."""
    out: list[str] = []
    notes: list[str] = []
    for workload in sorted({r["workload"] for r in rows}):
        cols = COLUMNS[workload]
        out.append(f"### {workload}. {titles[workload]}\n")
        out.append("| case | server | " + " | ".join(c[1] for c in cols) + " |")
        out.append("|---|---|" + "---:|" * len(cols))
        for r in [r for r in rows if r["workload"] == workload]:
            label = KINDS[r["server"]].label
            if r["ok"]:
                cells = [_cell(r["metrics"].get(key), dec) for key, _, dec in cols]
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


def persistence_note(servers: list[str]) -> str:
    lines = ["| server | persists |", "|---|---|"]
    lines += [f"| {KINDS[s].label} | {KINDS[s].persists} |" for s in servers]
    return "\n".join(lines)


def write_jsonl(path: Path, rows: list[Row], header: dict[str, Any]) -> None:
    with path.open("w") as f:
        for row in rows:
            f.write(json.dumps({**row, "machine": header}) + "\n")
