"""PNG bar charts of the aggregated results (one per workload).

matplotlib is not a project dependency: ``python -m benchmarks`` runs this
module with whichever interpreter has it (its own, else the peers venv), as
``python -m benchmarks.plots RESULTS.jsonl OUT_DIR``.
"""

from __future__ import annotations

import importlib
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

from benchmarks.report import COLUMNS
from benchmarks.servers import KINDS

Row = dict[str, Any]


def _load(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot(jsonl: Path, out_dir: Path) -> list[Path]:
    """Write ``<workload>.png`` for each workload; returns the files written."""
    matplotlib: Any = importlib.import_module("matplotlib")
    matplotlib.use("Agg")
    plt: Any = importlib.import_module("matplotlib.pyplot")
    rows = _load(jsonl)
    written = []
    for workload in sorted({r["workload"] for r in rows}):
        if workload == "T":
            mine = [r for r in rows if r["workload"] == "T"]
            paths = [_typists(plt, mine, out_dir), _typists_cpu(plt, mine, out_dir)]
            written += [p for p in paths if p]
            continue
        mine = [r for r in rows if r["workload"] == workload and r["ok"]]
        cols = [c for c in COLUMNS[workload] if _numeric(mine, c[0])]
        if not cols:
            continue
        cases = list(dict.fromkeys(r["case"] for r in mine))
        servers = list(dict.fromkeys(r["server"] for r in mine))
        fig, axes = plt.subplots(1, len(cols), figsize=(4.2 * len(cols), 3.8), squeeze=False)
        for ax, (key, title, _) in zip(axes[0], cols, strict=True):
            _bars(ax, mine, cases, servers, key)
            ax.set_title(title, fontsize=9)
            ax.tick_params(axis="x", labelsize=7)
        axes[0][0].legend([KINDS[s].label for s in servers], fontsize=7)
        fig.suptitle(f"{workload}: median of repeats, whiskers min-max", fontsize=10)
        fig.tight_layout()
        path = out_dir / f"{workload}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path)
    return written


def _median(row: dict[str, Any], key: str) -> float | None:
    stat = row["metrics"].get(key)
    if isinstance(stat, dict) and "median" in stat:
        return float(stat["median"])
    return None


def _typists(plt: Any, rows: list[dict[str, Any]], out_dir: Path) -> Path | None:
    """T.png: p99 latency and server CPU against the number of typists, one line per server.

    Failed steps are left out; client-bound steps are drawn hollow.
    """
    steps = [r for r in rows if r["ok"] and not r["case"].startswith("1 busy room")]
    if not steps:
        return None
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    panels = [
        ("p99_ms", "p99 delivery latency, ms (log)"),
        ("server_cpu_pct", "server CPU, % of one core"),
        ("server_cpu_us_per_update", "server CPU µs per edit"),
    ]
    for ax, (key, title) in zip(axes, panels, strict=True):
        for server in dict.fromkeys(r["server"] for r in steps):
            mine = sorted(
                (r for r in steps if r["server"] == server),
                key=lambda r: _median(r, "clients") or 0,
            )
            xs = [_median(r, "clients") or 0 for r in mine]
            ys = [_median(r, key) or 0 for r in mine]
            (line,) = ax.plot(xs, ys, marker="o", label=KINDS[server].label)
            bound = [
                (x, y)
                for r, x, y in zip(mine, xs, ys, strict=True)
                if (r["metrics"].get("client_bound") or {}).get("any")
            ]
            if bound:
                ax.plot(
                    [b[0] for b in bound],
                    [b[1] for b in bound],
                    "o",
                    markerfacecolor="white",
                    color=line.get_color(),
                )
        ax.set_xscale("log", base=2)
        if key == "p99_ms":
            ax.set_yscale("log")
        ax.set_xlabel("typists (3 per room, 5 edits/s each)", fontsize=8)
        ax.set_title(title, fontsize=9)
    axes[0].legend(fontsize=7)
    fig.suptitle("T: typists (hollow: client-bound step)", fontsize=10)
    fig.tight_layout()
    path = out_dir / "T.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _typists_cpu(plt: Any, rows: list[Row], out_dir: Path) -> Path | None:
    """T-cpu.png: server CPU µs per edit against typists, every server on one chart.

    Solid lines keep edits on disk, dashed ones keep them in memory only; the legend
    says when each persisting server fsyncs, so cost is read next to what it buys.
    """
    steps = _steps(rows)
    if not steps:
        return None
    fig, ax = plt.subplots(figsize=(8, 4.6))
    for server in dict.fromkeys(r["server"] for r in steps):
        kind = KINDS[server]
        xs, ys = _series(steps, server, "server_cpu_us_per_update")
        label = f"{kind.label} (fsync: {kind.fsync})" if kind.durable else f"{kind.label} (memory)"
        ax.plot(xs, ys, marker="o", linestyle="-" if kind.durable else "--", label=label)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("typists (3 per room, 5 edits/s each)", fontsize=8)
    ax.set_ylabel("server CPU µs per edit", fontsize=8)
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=6)
    ax.set_title("T: CPU per edit (solid: persists, dashed: memory only)", fontsize=9)
    fig.tight_layout()
    path = out_dir / "T-cpu.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _steps(rows: list[Row]) -> list[Row]:
    """T's stepped cases that passed (the busy room is not a step)."""
    return [r for r in rows if r["ok"] and not r["case"].startswith("1 busy room")]


def _series(rows: list[Row], server: str, key: str) -> tuple[list[float], list[float]]:
    """(typists, median of ``key``) for one server's steps, in order of typists."""
    mine = sorted(
        (r for r in rows if r["server"] == server), key=lambda r: _median(r, "clients") or 0
    )
    return [_median(r, "clients") or 0 for r in mine], [_median(r, key) or 0 for r in mine]


def _numeric(rows: list[dict[str, Any]], key: str) -> bool:
    return any(
        isinstance(r["metrics"].get(key), dict) and "median" in r["metrics"][key] for r in rows
    )


def _bars(
    ax: Any, rows: list[dict[str, Any]], cases: list[str], servers: list[str], key: str
) -> None:
    width = 0.8 / max(1, len(servers))
    for i, server in enumerate(servers):
        xs, ys, lo, hi = [], [], [], []
        for j, case in enumerate(cases):
            stat = next(
                (
                    r["metrics"].get(key)
                    for r in rows
                    if r["case"] == case and r["server"] == server
                ),
                None,
            )
            if not isinstance(stat, dict) or "median" not in stat:
                continue
            xs.append(j + i * width)
            ys.append(stat["median"])
            lo.append(stat["median"] - stat["min"])
            hi.append(stat["max"] - stat["median"])
        ax.bar(xs, ys, width, yerr=[lo, hi], capsize=2)
    ax.set_xticks([j + width * (len(servers) - 1) / 2 for j in range(len(cases))])
    ax.set_xticklabels([textwrap.fill(c, 22) for c in cases], fontsize=6)


def main(argv: list[str]) -> int:
    for path in plot(Path(argv[0]), Path(argv[1])):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
