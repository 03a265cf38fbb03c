"""Run the Node load generator once and parse its ``RESULT {json}`` line."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from benchmarks.paths import NODE_CLIENTS

Result = dict[str, Any]


def run_loadgen(config: dict[str, Any], timeout_s: float) -> Result:
    """One workload run; a crash or timeout becomes a result with ``failures``."""
    config = {**config, "hardDeadlineMs": int(timeout_s * 1000)}
    cmd = ["node", str(NODE_CLIENTS / "loadgen.mjs"), json.dumps(config)]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout_s + 30, check=False)
    except subprocess.TimeoutExpired:
        return {"failures": [f"load generator exceeded {timeout_s:.0f} s"]}
    for line in reversed(proc.stdout.decode(errors="replace").splitlines()):
        if line.startswith("RESULT "):
            result: Result = json.loads(line[len("RESULT ") :])
            return result
    tail = proc.stderr.decode(errors="replace")[-2000:]
    return {"failures": [f"load generator exited {proc.returncode} without a result: {tail}"]}
