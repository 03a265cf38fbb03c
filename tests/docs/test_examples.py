"""Every example file the documentation includes runs here, against a real server.

Python scripts and the JS examples (in Node, with what a browser has and Node lacks) run as
their own processes; shell examples run in bash in the examples' scratch directory, where
`performer serve` lines are checked in-process up to the point of listening (each would
otherwise hold its shell forever) and every other `performer` command runs for real: the
CLI's `main`, in a process forked from one that has imported it already
(tests/docs/performer_zygote.py), so twenty commands do not cost twenty start-ups.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine.rules.model import load_rules
from engine.storage.backup import backup_lmdb
from server.app import create_app
from server.cli.parser import build_parser
from server.cli.serve import config_from
from server.hooks import load_hooks
from tests.docs.catalog import ROOT, example_files
from tests.docs.conftest import DocsServer
from tests.redis_process import free_port

RUN_DEADLINE = 60.0
SECRET = "docs-example-secret-" + "0123456789abcdef" * 2
VENV_BIN = Path(sys.executable).parent
CLIENT_JS = ROOT / "client_js"

# What each Python script prints (a substring of its output).
PRINTS = {
    "sdk_quickstart.py": "saved [",
    "sdk_many_rooms.py": "saved saved",
    "engine_script.py": "{'t': 'hello'}",
}
# Hook modules, applications and data files that other tests load or run.
RUN_ELSEWHERE = {
    "my_hooks.py": "tests/docs/test_app_examples.py",
    "embed.py": "tests/docs/test_app_examples.py",
    "webhook_receiver.py": "tests/docs/test_app_examples.py",
    "message_check.py": "tests/rules/check_hooks.py",
    "time_bot.py": "tests/server/test_hooks.py",
    "chat-rules.toml": "tests/docs/test_examples.py",  # loaded by the rules.sh serve line
    "deeper-rules.toml": "tests/docs/test_examples.py",  # ditto
    "author-rules.toml": "tests/docs/test_examples.py",  # ditto
}
FLAGS_ONLY = {"benchmarks.sh", "benchmarks-apps.sh", "benchmarks-storage.sh"}
OFFLINE = {"store-tools.sh"}  # rewrites the store: runs on a backup, not the live one


def test_every_example_file_has_a_runner() -> None:
    handled = {*PRINTS, *RUN_ELSEWHERE}
    for path in example_files():
        if path.suffix in {".sh", ".js"}:
            continue  # every one is a parameter of the tests below
        assert path.name in handled, f"{path.relative_to(ROOT)}: add how the tests run it"
    for name, test_file in RUN_ELSEWHERE.items():
        stem = name.removesuffix(".py")
        assert stem in (ROOT / test_file).read_text(), f"{test_file} does not run {name}"


def _ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


PYTHON_SCRIPTS = [p for p in example_files() if p.name in PRINTS]
SHELL = [p for p in example_files() if p.suffix == ".sh"]
JS = [p for p in example_files() if p.suffix == ".js"]


@pytest.mark.parametrize("path", PYTHON_SCRIPTS, ids=_ids(PYTHON_SCRIPTS))
def test_python_example(path: Path, docs_server: DocsServer, tmp_path: Path) -> None:
    source = docs_server.localize(path.read_text())
    done = subprocess.run(
        [sys.executable, "-c", source],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=RUN_DEADLINE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    assert PRINTS[path.name] in done.stdout, done.stdout


@pytest.mark.parametrize("path", JS, ids=_ids(JS))
def test_js_example(path: Path, docs_server: DocsServer) -> None:
    """Run from stdin in client_js/examples, so its imports resolve as the file's do."""
    node = shutil.which("node")
    assert node, "node is not installed: scripts/install-system.sh installs it"
    assert (CLIENT_JS / "node_modules").is_dir(), "run `npm ci` in client_js"
    done = subprocess.run(
        [node, "--import", "../test/helpers/node-globals.js", "--input-type=module", "-"],
        input=docs_server.localize(path.read_text()),
        cwd=path.parent,
        capture_output=True,
        text=True,
        timeout=RUN_DEADLINE,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip(), "the example printed nothing"


PRELUDE = r"""
set -eu
curl() { command curl --fail-with-body --max-time 30 "$@"; }   # an HTTP error fails the example
xdg-open() { curl -s -o /dev/null "$1"; }                     # "open in a browser": fetch it
wait_for_redis() {
  local url="" next=""
  for arg in "$@"; do [ "$next" = 1 ] && url="$arg"; next=0; [ "$arg" = --redis ] && next=1; done
  [ -z "$url" ] && return 0
  local port="${url##*:}"; port="${port%%/*}"
  for _ in $(seq 200); do redis-cli -p "$port" ping >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "redis on port $port never answered" >&2; return 1
}
performer() {
  if [ "$1" = serve ]; then
    shift; printf '%q ' "$@" >> "$SERVE_LINES"; printf '\n' >> "$SERVE_LINES"; return 0
  fi
  wait_for_redis "$@"
  "$DOCS_PYTHON" -S "$PERFORMER_CLIENT" "$@"   # the CLI, forked from one that has imported it
}
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
"""


def _check_serve_line(args: list[str]) -> None:
    """Everything `performer serve` does before it listens: flags, config, hooks, rules, app."""
    parsed = build_parser().parse_args(["serve", *args])
    hooks = load_hooks(parsed.hooks) if parsed.hooks else None
    rules = load_rules(parsed.rules) if parsed.rules else None
    create_app(config_from(parsed), hooks, rules=rules)


@pytest.mark.parametrize("path", SHELL, ids=_ids(SHELL))
def test_shell_example(
    path: Path, docs_server: DocsServer, performer_zygote: Path, tmp_path: Path
) -> None:
    if path.name in FLAGS_ONLY:
        _check_flags(path)
        return
    workdir = docs_server.scratch
    if path.name in OFFLINE:
        workdir = tmp_path
        backup_lmdb(str(docs_server.scratch / "data"), str(tmp_path / "data"))
    serve_lines = tmp_path / "serve-lines"
    serve_lines.touch()
    script = docs_server.localize(path.read_text()).replace("6379", str(free_port()))
    env = {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
        "SECRET": SECRET,
        "WEBHOOK_SECRET": SECRET,
        "SERVE_LINES": str(serve_lines),
        "PERFORMER_LOG": "WARNING",
        "PERFORMER_ZYGOTE": str(performer_zygote),
        "PERFORMER_CLIENT": str(ROOT / "tests" / "docs" / "performer_client.py"),
        "DOCS_PYTHON": sys.executable,
    }
    done = subprocess.run(
        ["bash", "-c", PRELUDE + script],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=RUN_DEADLINE,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for line in serve_lines.read_text().splitlines():
        _check_serve_line(shlex.split(line))


def _check_flags(path: Path) -> None:
    """Benchmarks take minutes: check that each command's module still takes its flags."""
    helps: dict[str, str] = {}
    for line in path.read_text().splitlines():
        words = shlex.split(line, comments=True)
        if not words:
            continue
        assert words[:2] == ["python", "-m"], f"{path.name}: {line!r} is not `python -m ...`"
        module = words[2]
        if module not in helps:
            helps[module] = subprocess.run(
                [sys.executable, "-m", module, "--help"],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=RUN_DEADLINE,
                check=True,
            ).stdout
        for flag in (w for w in words[3:] if w.startswith("--")):
            assert re.search(rf"{re.escape(flag)}\b", helps[module]), f"{module} has no {flag}"
