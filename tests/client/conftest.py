"""A real `performer serve` process for the client tests, and tokens from the real CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, ServerProcess, StartServer

__all__ = ["PERFORMER", "ROOT", "LiveServer", "StartServer", "make_token"]

PERFORMER = str(Path(sys.executable).parent / "performer")


LiveServer = ServerProcess


@pytest.fixture
def start_server(server_factory: StartServer) -> StartServer:
    """Start servers (extra CLI flags as arguments); stopped at teardown."""
    return server_factory


@pytest.fixture
def live_server(server_factory: StartServer) -> LiveServer:
    return server_factory()


def make_token(secret: str, room: str, *extra: str) -> str:
    """A token from the real CLI (`performer token`)."""
    out = subprocess.run(
        [PERFORMER, "token", "--secret", secret, "--room", room, *extra],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return out.stdout.strip()
