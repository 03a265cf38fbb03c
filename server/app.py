"""create_app(config): routes, typed state, and the startup/shutdown order.

Startup: open the backend (LMDB + group committer, or Redis), then accept connections.
Shutdown: stop accepting, let every room finish its queued work and close its clients
(1001), finish the last commits, close LMDB.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from engine.storage import DocStore, LmdbKV
from server.auth import Authorizer
from server.backend import Backend, LmdbBackend
from server.config import Config
from server.http_api import add_routes, engine_errors
from server.keys import AUTHORIZER, BACKEND, CONFIG, METRICS, REGISTRY
from server.metrics import Metrics
from server.registry import RoomRegistry
from server.ws import handle_websocket

log = logging.getLogger(__name__)


def create_app(config: Config) -> web.Application:
    app = web.Application(
        middlewares=[engine_errors], client_max_size=config.limits.max_update_bytes
    )
    app[CONFIG] = config
    app[METRICS] = Metrics()
    app[AUTHORIZER] = Authorizer(config.auth_secret)
    app.cleanup_ctx.append(_storage)
    app.on_shutdown.append(_drain_rooms)
    add_routes(app)
    app.router.add_get("/rooms/{room}", _websocket)
    _add_static(app, config)
    if config.auth_secret is None:
        log.warning("no auth secret: the server is OPEN, anyone may read and write any room")
    return app


def open_backend(config: Config, metrics: Metrics) -> Backend:
    """Embedded LMDB by default; Redis Streams when several processes share rooms."""
    if config.redis_url:
        from server.redis_backend import RedisBackend

        return RedisBackend(
            config.redis_url,
            metrics,
            policy=config.compaction,
            trim_log=not config.retention.keep_log,
        )
    kv = LmdbKV(config.data_dir, map_size=config.map_size, sync=config.fsync)
    store = DocStore(kv, policy=config.compaction, retention=config.retention)
    return LmdbBackend(store, metrics)


async def _storage(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    backend = open_backend(config, app[METRICS])
    await backend.start()
    app[BACKEND] = backend
    app[REGISTRY] = RoomRegistry(backend, config, app[METRICS])
    try:
        yield
    finally:
        await backend.close()


async def _drain_rooms(app: web.Application) -> None:
    await app[REGISTRY].close(app[CONFIG].shutdown_timeout_seconds)


async def _websocket(request: web.Request) -> web.StreamResponse:
    app = request.app
    return await handle_websocket(
        request,
        config=app[CONFIG],
        authorizer=app[AUTHORIZER],
        registry=app[REGISTRY],
        metrics=app[METRICS],
    )


def _add_static(app: web.Application, config: Config) -> None:
    static = config.static_dir

    async def index(_: web.Request) -> web.StreamResponse:
        page = static / "index.html"
        if not page.exists():
            return web.Response(
                text="The chat demo is not built: run `npm run build` in client_js/.", status=404
            )
        return web.FileResponse(page, headers={"Cache-Control": "no-cache"})

    async def service_worker(_: web.Request) -> web.StreamResponse:
        worker = static / "sw.js"
        if not worker.exists():
            raise web.HTTPNotFound()
        return web.FileResponse(
            worker, headers={"Cache-Control": "no-cache", "Content-Type": "text/javascript"}
        )

    app.router.add_get("/", index)
    app.router.add_get("/sw.js", service_worker)
    if static.is_dir():
        app.router.add_static("/static/", static)
