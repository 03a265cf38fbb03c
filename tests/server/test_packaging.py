"""What a new user gets from the README's install: every backend works out of the box."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_redis_client_is_installed_with_the_server() -> None:
    """`performer serve --redis` died with ModuleNotFoundError after `pip install .`: the
    Redis client was an optional extra the README never mentioned."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {
        dep.split(">")[0].split("=")[0].split("[")[0].strip() for dep in project["dependencies"]
    }
    assert "redis" in names


def test_an_unreachable_redis_is_a_clear_error_not_a_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "server", "verify", "--redis", "redis://127.0.0.1:1/0"],
        capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1
    assert "Redis" in result.stderr and "Traceback" not in result.stderr
