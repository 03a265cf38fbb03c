"""Sample our server with py-spy while workload A (or one step of T) runs; list the hot spots.

A separate run from the measured ones: sampling slows the server a little.
py-spy lives in the peers venv (or beside the running Python); it attaches to the server
by pid.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from benchmarks.paths import PEERS_VENV
from benchmarks.servers import KINDS, RunningServer
from benchmarks.workloads import Sizes, fanout, typists_step

_SAMPLE = re.compile(r"^(.*) (\d+)$")
_SITE = re.compile(r"/(?:site-packages|lib/python3\.\d+)/")


TYPIST_PROFILE_ROOMS = 100


def profile_ours(
    sizes: Sizes,
    seed: int,
    out_dir: Path,
    workload: str = "A",
    loop: str = "uvloop",
    top: int = 15,
) -> str:
    """Run A (or one step of T, 100 rooms x 3 typists) against ours under py-spy.

    Returns a Markdown section with the top frames.
    """
    spy = _py_spy()
    raw = out_dir / f"profile-ours-{workload}.raw.txt"
    what = "workload A"
    if workload == "T":
        what = f"workload T, {TYPIST_PROFILE_ROOMS} rooms x 3 typists"
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
        log = out_dir / "profile-ours.log"
        server = RunningServer(KINDS["ours"], Path(tmp) / "data", log, loop=loop)
        with server:
            cmd = [str(spy), "record", "--pid", str(server.pid), "--rate", "200", "--format", "raw"]
            cmd += ["--output", str(raw), "--nonblocking"]
            if workload == "T":
                cmd.append("--gil")  # CPU, not waiting: the writer's fsync holds no GIL
            spy_proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                if workload == "T":
                    cases = [typists_step(server, sizes, seed, TYPIST_PROFILE_ROOMS)]
                else:
                    cases = fanout(server, sizes, seed)
            finally:
                spy_proc.send_signal(signal.SIGINT)
                _, err = spy_proc.communicate(timeout=60)
    if not raw.exists():
        return f"py-spy wrote no profile: {err.decode(errors='replace')[-500:]}"
    self_time, inclusive, total = _tally(raw.read_text())
    ok = all(not c["failures"] for c in cases)
    sampled = (
        "only the thread holding the GIL (py-spy --gil): Python's CPU, without the "
        "writer thread's fsync waits or the loop's idle polls"
        if workload == "T"
        else "py-spy's default idle filter; time in native code (uvloop, LMDB, fsync) "
        "counts for the Python frame that called it"
    )
    lines = [
        (
            f"py-spy, 200 Hz, {total:,} samples of the server process ({loop}) during {what} "
            f"({'all cases passed' if ok else 'some cases FAILED'}); {sampled}.\n"
        ),
        "| self % | function (file:line) |",
        "|---:|---|",
    ]
    lines += [f"| {100 * n / total:.1f} | `{_short(f)}` |" for f, n in self_time.most_common(top)]
    lines += ["", "| inclusive % | function |", "|---:|---|"]
    lines += [f"| {100 * n / total:.1f} | `{_short(f)}` |" for f, n in inclusive.most_common(top)]
    return "\n".join(lines) + "\n"


def _py_spy() -> Path:
    """The peers venv's py-spy, else one installed beside the running interpreter."""
    peers = PEERS_VENV / "bin" / "py-spy"
    beside = Path(sys.executable).parent / "py-spy"
    return beside if not peers.exists() and beside.exists() else peers


def _tally(text: str) -> tuple[Counter[str], Counter[str], int]:
    """Self and inclusive sample counts per frame from py-spy's raw (collapsed) output."""
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if not m:
            continue
        frames = [f for f in m.group(1).split(";") if f and not f.startswith("process ")]
        frames = [f for f in frames if not f.startswith("thread ")]
        count = int(m.group(2))
        total += count
        if frames:
            self_time[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    return self_time, inclusive, max(total, 1)


def _short(frame: str) -> str:
    """Drop the interpreter / venv prefix of a frame's file path."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    parts = _SITE.split(where, maxsplit=1)
    where = parts[-1] if len(parts) > 1 else "/".join(Path(where).parts[-2:])
    return f"{name} ({where})"
