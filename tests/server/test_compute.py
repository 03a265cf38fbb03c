"""The compute pool: pure functions in a worker process, which may die and come back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest

from server.compute import Compute


def _die() -> None:
    os._exit(3)  # a worker killed mid-call (out of memory, a signal)


async def test_a_dead_worker_fails_its_call_and_the_next_call_gets_a_new_one() -> None:
    compute = Compute()
    try:
        assert await compute.run(pow, 2, 10) == 1024
        with pytest.raises(BrokenProcessPool):
            await compute.run(_die)
        assert await compute.run(pow, 3, 3) == 27
    finally:
        compute.close()


async def test_an_exception_in_the_function_comes_back_as_itself() -> None:
    compute = Compute()
    try:
        with pytest.raises(ZeroDivisionError):
            await compute.run(divmod, 1, 0)
        assert await compute.run(divmod, 7, 2) == (3, 1)
    finally:
        compute.close()


def test_workers_exit_when_the_server_is_killed() -> None:
    script = textwrap.dedent(
        """
        import asyncio, os, signal
        from server.compute import Compute
        async def main():
            compute = Compute()
            print(await compute.run(os.getpid), flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        asyncio.run(main())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    worker = int(done.stdout.strip())
    deadline = time.monotonic() + 10
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(worker), "the worker outlived its server"


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


async def test_the_lanes_workers_run_below_the_servers_priority() -> None:
    """Views and restores give the cores to the rooms' event loop (ComputeLimits.nice);
    a pool asked for no change keeps the server's priority."""
    from server.compute_lane import ComputeLane
    from server.config import ComputeLimits

    mine = os.nice(0)
    lane = ComputeLane(ComputeLimits(nice=5))
    plain = Compute()
    try:
        assert await lane.run(os.nice, 0, caller=None, room="r") == min(19, mine + 5)
        assert await plain.run(os.nice, 0) == mine
    finally:
        lane.close()
        plain.close()
