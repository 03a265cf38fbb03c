"""Where things live, relative to this package (never machine-specific)."""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
PEERS = BENCH / ".peers"
NODE_CLIENTS = BENCH / "node"
NODE_PEERS_SRC = BENCH / "peers" / "node"
NODE_PEERS = PEERS / "node"
PEERS_VENV = PEERS / "venv"
RESULTS = BENCH / "results"


def performer_executable() -> Path:
    """The ``performer`` script of the interpreter running us, else the repo's venv."""
    beside = Path(sys.executable).parent / "performer"
    return beside if beside.exists() else REPO / ".venv" / "bin" / "performer"


def peers_python() -> Path:
    """Python of the peers venv (pycrdt-websocket, uvicorn, matplotlib, py-spy)."""
    return PEERS_VENV / "bin" / "python"
