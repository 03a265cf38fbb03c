"""The server as a sub-application of an aiohttp application you already run.

python -m examples.embed      (clients connect to ws://127.0.0.1:8080/sync/rooms/ROOM)
"""

from pathlib import Path

from aiohttp import web

from examples.my_hooks import MyHooks
from server import Config, TokenRedactingAccessLogger, create_app


def build_app() -> web.Application:
    app = web.Application()  # your application, its routes, its sessions
    config = Config(data_dir=Path("./data"), allowed_origins=("https://app.example",))
    app.add_subapp("/sync/", create_app(config, hooks=MyHooks()))
    return app


if __name__ == "__main__":
    web.run_app(build_app(), port=8080, access_log_class=TokenRedactingAccessLogger)  # no ?token=
