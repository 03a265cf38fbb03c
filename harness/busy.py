"""CPU load on the server's machine that never touches the server: the machine's own
share of an attacked probe's latency.

On a small machine the attacking clients can only run on the server's cores, and on the
2-core VM the harness was built on, a process that merely spins at the lowest CPU
priority Linux offers (SCHED_IDLE) raised the quiet probe's p99 from 1.7 ms to 5-8 ms,
even pinned to the other core while the server and the probe had one to themselves. An
attacked p99 read without that figure beside it blames the server for the machine.
`BusyLoad` is that control: `count` processes spinning at SCHED_IDLE (nice 19 where the
OS has no such class) while the probe is measured once more.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from types import TracebackType
from typing import Any

SPIN_LIMIT_SECONDS = 300.0  # a spinner outliving a killed harness stops by itself
START_TIMEOUT_SECONDS = 30.0


def lowest_priority() -> None:
    """SCHED_IDLE where the OS has it (runs only on CPU nobody else wants), else nice 19."""
    if hasattr(os, "SCHED_IDLE"):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    else:
        os.nice(19)


def spin(started: Any = None, seconds: float = SPIN_LIMIT_SECONDS) -> None:
    """Keep one core busy for `seconds` at the lowest priority (a spawned process's
    entry point; `started`, an Event, is set once it spins)."""
    lowest_priority()
    if started is not None:
        started.set()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


class BusyLoad:
    """`count` spinning processes, for the length of a `with` block."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._processes: list[Any] = []

    def __enter__(self) -> BusyLoad:
        context = multiprocessing.get_context("spawn")
        started = [context.Event() for _ in range(self.count)]
        for index, event in enumerate(started):
            process = context.Process(target=spin, args=(event,), name=f"busy-{index}", daemon=True)
            process.start()
            self._processes.append(process)
        if not all(event.wait(START_TIMEOUT_SECONDS) for event in started):
            self.__exit__(None, None, None)  # no spinner outlives a failed start
            raise TimeoutError("a busy process did not start spinning")
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        for process in self._processes:
            process.kill()
        for process in self._processes:
            process.join(10)
        self._processes.clear()

    @property
    def alive(self) -> int:
        """How many spinners run now."""
        return sum(process.is_alive() for process in self._processes)
