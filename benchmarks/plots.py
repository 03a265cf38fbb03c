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
