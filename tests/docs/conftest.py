"""One real server for every example, started once: the address the examples name
(127.0.0.1:8080) is replaced by its port, and its data directory is the examples' ./data."""

from __future__ import annotations

import json
import select
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Array, Doc

from harness.process import ServerProcess
from tests.docs.catalog import ROOT

START_DEADLINE = 30.0
SEED_EDITS = 50  # the examples read ?at=12, restore seq 12, page after 41


@dataclass
class DocsServer:
    """The server the examples talk to, and the directory their relative paths mean."""

    process: ServerProcess
    scratch: Path

    @property
    def port(self) -> int:
        return self.process.port

    def localize(self, text: str) -> str:
        """An example's text with the documented address replaced by the test server's."""
        return text.replace("127.0.0.1:8080", f"127.0.0.1:{self.port}").replace(
            "localhost:8080", f"127.0.0.1:{self.port}"
        )


def _seed(url: str, room: str, edits: int) -> None:
    """A room with history: one REST update per item, each durable before the next."""
    doc: Doc[Any] = Doc()
    items = doc.get("items", type=Array)
    for n in range(edits):
        before = doc.get_state()
        items.append(f"item {n}")
        update = doc.get_update(before)
        request = urllib.request.Request(
            f"{url}/v1/rooms/{room}/update",
            data=update,
            headers={"Content-Type": "application/octet-stream"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=20) as response:
            assert json.load(response)["seq"] == n + 1


def _wait_for_archive(archive: Path, deadline: float = 20.0) -> None:
    """The archive ships within about a second of each commit; the recovery examples read it."""
    end = time.monotonic() + deadline
    while not any(archive.rglob("manifest.json")):
        assert time.monotonic() < end, "the archive got nothing"
        time.sleep(0.1)


@pytest.fixture(scope="session")
def docs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DocsServer]:
    scratch = tmp_path_factory.mktemp("docs-examples")
    process = ServerProcess(scratch / "data", ["--archive", str(scratch / "archive")])
    process.start()
    try:
        _seed(process.http_url, "lobby", SEED_EDITS)
        _wait_for_archive(scratch / "archive")
        yield DocsServer(process, scratch)
    finally:
        process.stop()


@pytest.fixture(scope="session")
def performer_zygote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The socket of tests/docs/performer_zygote.py, which runs the examples' commands."""
    socket_path = tmp_path_factory.mktemp("zygote") / "performer.sock"
    zygote = subprocess.Popen(
        [sys.executable, "-m", "tests.docs.performer_zygote", str(socket_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert zygote.stdout is not None
        ready, _, _ = select.select([zygote.stdout], [], [], START_DEADLINE)
        assert ready, "the performer zygote did not start"
        assert zygote.stdout.readline().strip() == "READY"
        yield socket_path
    finally:
        zygote.terminate()
        zygote.wait(timeout=20)
        if zygote.stdout is not None:
            zygote.stdout.close()
