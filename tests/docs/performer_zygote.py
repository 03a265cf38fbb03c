"""`performer` for the shell examples, without an interpreter start-up per command.

Each `performer` command imports the whole server (aiohttp, pycrdt, LMDB) before it does
anything: about a second of CPU, some twenty times over in the shell examples. This process
imports the CLI once, then for every command a client sends over a Unix socket forks a child
that runs `server.cli.main(argv)` in the client's directory and environment, its output going
back over the socket, then the exit code. The child is the same code as the installed
entry point; only the start-up is shared.

    python -m tests.docs.performer_zygote SOCKET      (prints READY once it listens)
    python -S tests/docs/performer_client.py ARGS...  (what the examples' `performer` runs)
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import traceback
from typing import Any

from server.cli import main

EXIT_MARK = b"\x00performer-exit "
CHILD_DEADLINE_SECONDS = 50  # a command that hangs is killed: the zygote serves the next


def serve(path: str) -> None:
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(path)
        listener.listen()
        print("READY", flush=True)
        while True:
            conn, _ = listener.accept()
            with conn:
                request = json.loads(conn.makefile("rb").readline())
                pid = os.fork()
                if pid == 0:
                    _run_child(conn, request)
                _, status = os.waitpid(pid, 0)
                conn.sendall(EXIT_MARK + str(os.waitstatus_to_exitcode(status)).encode())


def _run_child(conn: socket.socket, request: dict[str, Any]) -> None:
    """Become the command: the client's directory, environment and stdio, then exit."""
    code = 1
    try:
        signal.alarm(CHILD_DEADLINE_SECONDS)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        os.dup2(conn.fileno(), 1)
        os.dup2(conn.fileno(), 2)
        code = main(request["argv"])
    except SystemExit as exc:  # argparse errors, and commands that exit with a message
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":
    serve(sys.argv[1])
