"""Raw results of a long-form run as JSON: what ran, on which commit and machine, what
it measured and what it found wrong."""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.common import ROOT


def _git(*args: str) -> str:
    result = subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30, check=False
    )
    return result.stdout.strip() if result.returncode == 0 else ""


def provenance() -> dict[str, Any]:
    """The commit (and whether the tree had changes on top of it), the date and the machine
    (`uname -m`, `nproc`, Python)."""
    return {
        "commit": _git("rev-parse", "HEAD") or "unknown",
        "dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "arch": platform.machine(),
            "cores": len(os.sched_getaffinity(0)),
            "python": platform.python_version(),
        },
    }


def command(module: str, argv: list[str] | None) -> str:
    args = sys.argv[1:] if argv is None else argv
    return shlex.join(["python", "-m", module, *args])


def write(
    path: Path | None,
    *,
    module: str,
    argv: list[str] | None,
    result: dict[str, Any],
    lines: list[str],
    problems: list[str],
    exit_code: int,
) -> None:
    """Write one run's JSON to `path` (nothing when `path` is None)."""
    if path is None:
        return
    record = {
        "command": command(module, argv),
        **provenance(),
        "exit_code": exit_code,
        "problems": problems,
        "lines": lines,
        "result": result,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, default=str) + "\n")
