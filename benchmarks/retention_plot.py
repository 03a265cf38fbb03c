"""The retention plot (`retention.png`) from `retention.json`, apart from the measurement so
the peers venv (which has matplotlib but not the server's dependencies) can draw it:
`benchmarks/.peers/venv/bin/python -m benchmarks.retention_plot`."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

from benchmarks.paths import RESULTS

WORKLOADS = ("loop", "typing")


def plot(results: dict[str, Any], out: Path) -> Path | None:
    try:
        matplotlib: Any = importlib.import_module("matplotlib")
    except ImportError:
        return None
    matplotlib.use("Agg")
    plt: Any = importlib.import_module("matplotlib.pyplot")
    fig, axes = plt.subplots(1, len(WORKLOADS), figsize=(10, 3.8), squeeze=False)
    for ax, workload in zip(axes[0], WORKLOADS, strict=True):
        for label, points in results[workload].items():
            xs = [p["updates"] for p in points]
            ax.plot(xs, [p["live_bytes"] / 1e6 for p in points], label=f"{label}: live")
            ax.plot(xs, [p["file_bytes"] / 1e6 for p in points], "--", label=f"{label}: file")
        ax.set_title(workload, fontsize=9)
        ax.set_xlabel("updates")
        ax.set_ylabel("MB")
        ax.legend(fontsize=7)
    fig.suptitle("bytes on disk vs updates, with and without a history window", fontsize=10)
    fig.tight_layout()
    path = out / "retention.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def main() -> int:
    results = json.loads((RESULTS / "retention.json").read_text())
    png = plot(results, RESULTS)
    if png is None:
        print("matplotlib is not installed here", file=sys.stderr)
        return 1
    print(f"wrote {png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
