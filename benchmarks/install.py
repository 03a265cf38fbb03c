"""Install the load generator and the peer servers on demand.

Everything goes into ``benchmarks/node/node_modules`` and ``benchmarks/.peers``
(both git-ignored). A stamp holding the hash of the pinned inputs makes a
second run skip the install.
"""

from __future__ import annotations

import atexit
import hashlib
import io
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from benchmarks.paths import NODE_CLIENTS, NODE_PEERS, NODE_PEERS_SRC, PEERS, PEERS_VENV, REPO
from benchmarks.servers import NODE_KINDS

INSTALL_TIMEOUT_S = 900
PEERS_PIP = [
    "pycrdt-websocket==0.16.5",
    "uvicorn==0.34.0",
    "websockets==14.2",
    "matplotlib>=3.8",
    "py-spy>=0.3",
    "uvloop==0.23.0",
]


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part)
    return h.hexdigest()


def _fresh(stamp: Path, digest: str) -> bool:
    return stamp.exists() and stamp.read_text() == digest


def _run(cmd: list[str], cwd: Path) -> None:
    print(f"[bench] installing: {' '.join(cmd)} (in {cwd.name})", file=sys.stderr, flush=True)
    subprocess.run(cmd, cwd=cwd, check=True, timeout=INSTALL_TIMEOUT_S, stdout=subprocess.DEVNULL)


def ensure_node_clients() -> None:
    """``npm ci`` the load generator's pinned packages if they changed."""
    lock = (NODE_CLIENTS / "package-lock.json").read_bytes()
    stamp = NODE_CLIENTS / "node_modules" / ".bench-stamp"
    digest = _digest(lock)
    if _fresh(stamp, digest):
        return
    _run(["npm", "ci", "--no-audit", "--no-fund"], NODE_CLIENTS)
    stamp.write_text(digest)


def ensure_node_peers() -> None:
    """Copy the peer wrappers into ``.peers/node`` and ``npm ci`` their packages."""
    NODE_PEERS.mkdir(parents=True, exist_ok=True)
    sources = sorted(p for p in NODE_PEERS_SRC.iterdir() if p.is_file())
    for src in sources:
        shutil.copyfile(src, NODE_PEERS / src.name)
    stamp = NODE_PEERS / "node_modules" / ".bench-stamp"
    digest = _digest((NODE_PEERS_SRC / "package-lock.json").read_bytes())
    if _fresh(stamp, digest):
        return
    _run(["npm", "ci", "--no-audit", "--no-fund"], NODE_PEERS)
    stamp.write_text(digest)


def ensure_peers_venv() -> None:
    """A separate venv for pycrdt-websocket (and the plotting and profiling tools)."""
    stamp = PEERS_VENV / ".bench-stamp"
    digest = _digest("\n".join(PEERS_PIP).encode())
    if _fresh(stamp, digest):
        return
    PEERS.mkdir(parents=True, exist_ok=True)
    if not (PEERS_VENV / "bin" / "python").exists():
        _run([sys.executable, "-m", "venv", str(PEERS_VENV)], PEERS)
    _run([str(PEERS_VENV / "bin" / "pip"), "install", "-q", *PEERS_PIP], PEERS)
    stamp.write_text(digest)


def ensure_for(servers: list[str], want_tools: bool) -> None:
    """Install what the selected servers (and plots/profiling) need."""
    ensure_node_clients()
    if set(NODE_KINDS) & set(servers):
        ensure_node_peers()
    if {"pycrdt", "pycrdt-asyncio"} & set(servers) or want_tools:
        ensure_peers_venv()


def ours_snapshot(ref: str) -> tuple[Path, str]:
    """Export ``engine/`` and ``server/`` at a git ref into a fresh temporary directory.

    Other work in the tree keeps changing while a long comparison runs; measuring
    a fixed commit makes the numbers belong to one version. The copy lives outside
    the work tree (and is removed at exit), so edits made across the tree while
    the suite runs cannot reach it. Returns (dir, sha).
    """
    git = ["git", "-C", str(REPO)]
    sha = subprocess.run(
        [*git, "rev-parse", "--verify", f"{ref}^{{commit}}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.strip()
    target = Path(tempfile.mkdtemp(prefix=f"performer-ours-{sha[:12]}-"))
    atexit.register(shutil.rmtree, target, ignore_errors=True)
    archive = subprocess.run(
        [*git, "archive", "--format=tar", sha, "engine", "server"],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return target, sha
