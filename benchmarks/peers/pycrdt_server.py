"""pycrdt-websocket served by uvicorn, the way its README shows it.

Run with the peers venv's Python (it has pycrdt-websocket and uvicorn; the
project's own venv does not). Binds 127.0.0.1:0 and prints
``LISTENING http://HOST:PORT`` like our server. No YStore is configured, so
nothing is persisted; rooms are dropped when their last client leaves
(``auto_clean_rooms``, the default).

``--loop uvloop`` (what the suite uses by default, as our server runs on uvloop)
runs it on uvloop; ``--loop asyncio`` on asyncio's default loop, which is what
uvicorn picks when uvloop is not installed.

The modules are imported by name so that this file type-checks in the
project's venv, where they are not installed.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import signal
import socket
import sys
from typing import Any

HOST = "127.0.0.1"


def _bind() -> socket.socket:
    """Bind the port ourselves so that port 0 works and we know the chosen port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, 0))
    sock.listen(1024)
    return sock


async def serve() -> None:
    """Run the server until SIGTERM."""
    websocket: Any = importlib.import_module("pycrdt.websocket")
    uvicorn: Any = importlib.import_module("uvicorn")
    sock = _bind()
    ws_server = websocket.WebsocketServer(log=logging.getLogger("pycrdt"))
    app = websocket.ASGIServer(ws_server)
    config = uvicorn.Config(app, log_level="warning", ws_max_size=64 * 1024 * 1024)
    server = uvicorn.Server(config)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, lambda: setattr(server, "should_exit", True))
    async with ws_server:
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        port = sock.getsockname()[1]
        sys.stdout.write(f"LISTENING http://{HOST}:{port}\n")
        sys.stdout.flush()
        await task


def main() -> None:
    loop = sys.argv[sys.argv.index("--loop") + 1] if "--loop" in sys.argv else "asyncio"
    if loop == "uvloop":
        uvloop: Any = importlib.import_module("uvloop")
        uvloop.run(serve())
    else:
        asyncio.run(serve())


if __name__ == "__main__":
    main()
