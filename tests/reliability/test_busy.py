"""The abuse harness's control load: processes that spin at the lowest CPU priority for
as long as the block lasts, and are gone after it."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from harness.busy import BusyLoad


def _cpu_ticks(pid: int) -> int:
    """utime + stime of `pid`, in clock ticks (/proc/PID/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="SCHED_IDLE is Linux's")
def test_spinners_burn_cpu_at_idle_priority_and_stop_with_the_block() -> None:
    with BusyLoad(2) as load:
        pids = [process.pid for process in load._processes]
        assert load.alive == 2
        assert all(os.sched_getscheduler(pid) == os.SCHED_IDLE for pid in pids)
        before = sum(_cpu_ticks(pid) for pid in pids)
        time.sleep(0.5)
        assert sum(_cpu_ticks(pid) for pid in pids) > before  # they spin, however busy the machine
    assert load.alive == 0
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids)  # killed and reaped
