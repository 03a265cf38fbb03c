"""Start, restart and stop the servers under test, each as its own process.

Every server prints ``LISTENING http://HOST:PORT`` when ready (ours natively,
the peers through the small wrappers in ``benchmarks/peers``), binds
127.0.0.1:0, and stops on SIGTERM. The process id is what the load generator
reads CPU time and RSS from, so each command runs the server directly, with no
shell or launcher in between.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from benchmarks.paths import BENCH, NODE_PEERS, peers_python, performer_executable

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 12.0


@dataclass(frozen=True)
class ServerKind:
    """What the harness needs to know about one server implementation."""

    name: str
    flavor: str  # "path": room in the URL path (y-websocket); "hocuspocus": room in each frame
    ws_path: str  # prefix before the room name
    persists: str  # what survives a restart, for the report
    label: str
    durable: bool = False  # keeps rooms across a restart (the big-room workload needs it)
    python: bool = False  # a Python server: runs on the event loop chosen by --loop
    impl: str = ""  # which server this runs ("" = name); variants share one implementation
    loop: str | None = None  # a variant pinned to one event loop, whatever --loop says
    extra_args: tuple[str, ...] = ()  # more `performer serve` flags (ours only)
    # flags whose value is a path inside the run's own directory: (flag, name) (ours only)
    run_dir_args: tuple[tuple[str, str], ...] = ()
    fsync: str = "nothing stored"  # when an edit reaches the disk, for the tables

    @property
    def base(self) -> str:
        return self.impl or self.name


KINDS: dict[str, ServerKind] = {
    "ours": ServerKind(
        "ours",
        "path",
        "/rooms",
        "yes: LMDB log, fsync group commit",
        "Performer",
        durable=True,
        python=True,
        fsync="yes, before anyone sees the edit",
    ),
    "y-websocket": ServerKind(
        "y-websocket",
        "path",
        "",
        "no (YPERSISTENCE unset: memory only)",
        "@y/websocket-server 0.1.1",
    ),
    "y-websocket-leveldb": ServerKind(
        "y-websocket-leveldb",
        "path",
        "",
        "yes: YPERSISTENCE=DIR, y-leveldb 0.1 (LevelDB writes without fsync)",
        "@y/websocket-server 0.1.1 + y-leveldb",
        durable=True,
        fsync="no (LevelDB writes, never fsynced)",
    ),
    "hocuspocus": ServerKind(
        "hocuspocus", "hocuspocus", "", "no (no storage extension: memory only)", "Hocuspocus 3.4"
    ),
    "hocuspocus-sqlite": ServerKind(
        "hocuspocus-sqlite",
        "hocuspocus",
        "",
        "yes: @hocuspocus/extension-sqlite 3.4, the whole document per store, stores debounced"
        " (2 s after the last change, at most 10 s); SQLite synchronous=FULL fsyncs each store",
        "Hocuspocus 3.4 + SQLite",
        durable=True,
        fsync="yes, per debounced store (2-10 s after the edit)",
    ),
    "pycrdt": ServerKind(
        "pycrdt",
        "path",
        "",
        "no (no YStore: memory only)",
        "pycrdt-websocket 0.16 + uvicorn",
        python=True,
    ),
}

# The same Python servers pinned to asyncio's loop, to show both loops side by side.
KINDS["ours-asyncio"] = ServerKind(
    "ours-asyncio",
    "path",
    "/rooms",
    KINDS["ours"].persists,
    "Performer (asyncio)",
    durable=True,
    python=True,
    impl="ours",
    fsync=KINDS["ours"].fsync,
    loop="asyncio",
)
KINDS["pycrdt-asyncio"] = ServerKind(
    "pycrdt-asyncio",
    "path",
    "",
    KINDS["pycrdt"].persists,
    "pycrdt-websocket 0.16 + uvicorn (asyncio)",
    python=True,
    impl="pycrdt",
    loop="asyncio",
)

# Ours again, spoken to in the Hocuspocus dialect (document name in every frame, token
# handshake, SyncStatus after the commit): the same load generator, set against Hocuspocus.
KINDS["ours-hocuspocus"] = ServerKind(
    "ours-hocuspocus",
    "hocuspocus",
    "/hocuspocus",
    KINDS["ours"].persists,
    "Performer (Hocuspocus dialect)",
    durable=True,
    python=True,
    impl="ours",
    fsync=KINDS["ours"].fsync,
)

# Ours with the chat demo's rules on: what judging costs edits that break no rule (on an
# open server the rules that name users are not judged; the judge still watches `messages`
# and every update is scanned).
KINDS["ours-rules"] = ServerKind(
    "ours-rules",
    "path",
    "/rooms",
    KINDS["ours"].persists,
    "Performer (chat rules on)",
    durable=True,
    python=True,
    impl="ours",
    fsync=KINDS["ours"].fsync,
    extra_args=(
        "--rules",
        str(Path(__file__).resolve().parent.parent / "examples" / "chat-rules.toml"),
    ),
)

# Ours with the continuous archive on (`--archive`, into the run's own directory): what
# shipping every committed entry within a second costs, set against "ours".
KINDS["ours-archive"] = ServerKind(
    "ours-archive",
    "path",
    "/rooms",
    KINDS["ours"].persists + ", archived within 1 s",
    "Performer (archive on)",
    durable=True,
    python=True,
    impl="ours",
    run_dir_args=(("--archive", "archive"),),
    fsync=KINDS["ours"].fsync,
)

# The peers that run on Node (installed by ``install.ensure_node_peers``).
NODE_KINDS = ("y-websocket", "y-websocket-leveldb", "hocuspocus", "hocuspocus-sqlite")

# The event loop of the Python servers (--loop). Ours picks uvloop when it is
# installed; pycrdt-websocket under uvicorn gets asyncio's default loop unless
# uvloop is installed and asked for. Both run on the same loop in every run.
LOOPS = ("uvloop", "asyncio")


# Set by --ours-ref: a directory holding engine/ and server/ exported at one commit.
OURS_SNAPSHOT: list[Path] = []
_RUN_SNAPSHOT = "import sys; from server.cli import main; sys.exit(main())"
# The same, with uvloop unimportable: the server then falls back to asyncio.run.
_RUN_ASYNCIO = "import sys; sys.modules['uvloop'] = None; " + _RUN_SNAPSHOT


def _command(
    kind: ServerKind, data_dir: Path, idle_unload_s: float | None, loop: str = "uvloop"
) -> list[str]:
    loop = kind.loop or loop
    if kind.base == "ours":
        if loop == "asyncio":
            launcher = [sys.executable, "-c", _RUN_ASYNCIO]
        elif OURS_SNAPSHOT:
            launcher = [sys.executable, "-c", _RUN_SNAPSHOT]
        else:
            launcher = [str(performer_executable())]
        cmd = [*launcher, "serve", "--host", "127.0.0.1", "--port", "0"]
        cmd += ["--data", str(data_dir)]
        if idle_unload_s is not None:
            cmd += ["--idle-unload", str(idle_unload_s)]
        for flag, name in kind.run_dir_args:
            cmd += [flag, str(data_dir.parent / name)]
        return cmd + list(kind.extra_args)
    if kind.base in ("y-websocket", "y-websocket-leveldb"):
        return ["node", str(NODE_PEERS / "y_websocket_server.mjs")]
    if kind.base == "hocuspocus":
        return ["node", str(NODE_PEERS / "hocuspocus_server.mjs")]
    if kind.base == "hocuspocus-sqlite":
        return ["node", str(NODE_PEERS / "hocuspocus_sqlite_server.mjs")]
    if kind.base == "pycrdt":
        return [str(peers_python()), str(BENCH / "peers" / "pycrdt_server.py"), "--loop", loop]
    raise ValueError(f"unknown server {kind.name}")


def _drain(stream: IO[bytes]) -> None:
    """Keep reading stdout after the LISTENING line so the server never blocks on it."""
    for _ in iter(lambda: stream.read(65536), b""):
        pass


class RunningServer:
    """One server process; ``restart`` keeps the same data directory."""

    def __init__(
        self,
        kind: ServerKind,
        data_dir: Path,
        log_path: Path,
        idle_unload_s: float | None = None,
        loop: str = "uvloop",
    ) -> None:
        self.kind = kind
        self.data_dir = data_dir
        self.log_path = log_path
        self.idle_unload_s = idle_unload_s
        self.loop = loop
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    def start(self) -> None:
        """Launch and wait (bounded) for the LISTENING line."""
        env = {k: v for k, v in os.environ.items() if k not in ("YPERSISTENCE", "CALLBACK_URL")}
        cwd: Path | None = None
        if self.kind.base in NODE_KINDS:
            cwd = NODE_PEERS
        if self.kind.name == "y-websocket-leveldb":
            env["YPERSISTENCE"] = str(self.data_dir)
        if self.kind.name == "hocuspocus-sqlite":
            self.data_dir.mkdir(parents=True, exist_ok=True)
            env["HOCUSPOCUS_SQLITE"] = str(self.data_dir / "documents.sqlite")
        if self.kind.base == "ours" and OURS_SNAPSHOT:
            cwd = OURS_SNAPSHOT[0]
            env["PYTHONPATH"] = str(cwd)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                _command(self.kind, self.data_dir, self.idle_unload_s, self.loop),
                stdout=subprocess.PIPE,
                stderr=log,
                env=env,
                cwd=cwd,
            )
        assert self.proc.stdout is not None
        self.port = _read_port(self.proc, self.proc.stdout)
        threading.Thread(target=_drain, args=(self.proc.stdout,), daemon=True).start()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not exit within the deadline."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_TIMEOUT_S)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def loadgen_server(self) -> dict[str, Any]:
        """The ``server`` block of a load generator config."""
        return {
            "flavor": self.kind.flavor,
            "base": f"ws://127.0.0.1:{self.port}{self.kind.ws_path}",
            "pid": self.pid,
            "clkTck": os.sysconf("SC_CLK_TCK"),
        }

    def metrics_text(self) -> str | None:
        """Prometheus text from ``/metrics`` (ours only), or None."""
        if self.kind.base != "ours":
            return None
        url = f"http://127.0.0.1:{self.port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as resp:
            body: bytes = resp.read()
        return body.decode()

    def __enter__(self) -> RunningServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _read_port(proc: subprocess.Popen[bytes], stdout: IO[bytes]) -> int:
    """Read stdout lines until ``LISTENING http://HOST:PORT`` or the deadline."""
    deadline = time.monotonic() + START_TIMEOUT_S
    sel = selectors.DefaultSelector()
    sel.register(stdout, selectors.EVENT_READ)
    buf = b""
    try:
        while time.monotonic() < deadline:
            if not sel.select(timeout=0.5):
                if proc.poll() is not None:
                    break
                continue
            chunk = os.read(stdout.fileno(), 4096)
            if not chunk:
                break
            buf += chunk
            for line in buf.decode(errors="replace").splitlines():
                if line.startswith("LISTENING "):
                    return int(line.rsplit(":", 1)[1])
    finally:
        sel.close()
    proc.kill()
    raise RuntimeError(f"server did not print LISTENING in {START_TIMEOUT_S:.0f} s: {buf!r}")
