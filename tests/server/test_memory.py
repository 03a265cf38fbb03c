"""`performer serve` gives freed megabyte buffers back to the system: a burst of large
buffers allocated and freed by worker threads (as page reads are) leaves the process
about as large as before, however glibc moved its thresholds."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.conftest import ROOT

BURST = textwrap.dedent(
    """
    import sys, threading
    from pathlib import Path
    from server.rooms.memory import return_big_buffers

    def rss_mib():
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024

    applied = return_big_buffers() if sys.argv[1] == "on" else False
    freed = bytearray(8 << 20)  # glibc raises its threshold past a freed big buffer
    del freed
    before = rss_mib()
    def burst():
        held = [bytes(bytearray(1 << 20)) for _ in range(40)]
        del held
    for _ in range(3):
        threads = [threading.Thread(target=burst) for _ in range(4)]
        for t in threads: t.start()
        for t in threads: t.join()
    print(applied, round(rss_mib() - before, 1))
    """
)


def _burst(mode: str) -> tuple[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", BURST, mode], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    applied, growth = done.stdout.split()
    return applied, float(growth)


def test_a_burst_of_big_buffers_is_given_back() -> None:
    applied, growth = _burst("on")
    assert applied == "True"
    assert growth < 8, f"{growth} MiB kept after 160 MiB of buffers were freed"
