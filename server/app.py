"""create_app(config, hooks): routes, typed state, and the startup/shutdown order.

Startup: open the store (LMDB, or Redis) and the fan-out (local, or Redis), start the
deliveries (on_change hooks, webhooks), call `hooks.on_start`, then accept connections.
Shutdown: stop accepting, let every room finish its queued work and close its clients
(1001), stop the deliveries, finish the last commits, close the store.

Embedding: `parent.add_subapp("/sync/", create_app(config, hooks=MyHooks()))` serves the
rooms under /sync/ from the application's own aiohttp server.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from engine.errors import RulesInvalid
from engine.rules.enforce import check_enforceable
from engine.rules.model import Rules
from engine.storage.archive import DirectoryTarget
from engine.store import open_store
from server.archive import ArchiveConsumer
from server.auth import Authorizer
from server.change_hooks import ChangeHookConsumer
from server.compute import Compute
from server.compute_lane import ComputeLane
from server.config import Config, Limits
from server.delivery import Delivery
from server.hooks import Hooks
from server.http.changes import add_change_routes
from server.http.console import add_console_routes
from server.http.feed_encoding import sse_update
from server.http.hocuspocus import handle_hocuspocus
from server.http.keys import (
    AUTHORIZER,
    COMPUTE,
    CONFIG,
    FEEDS,
    HOOKS,
    LANE,
    METRICS,
    PAGE_RATE,
    PAGES,
    REGISTRY,
    RESTORE_RATE,
    ROOMS,
    STORE,
)
from server.http.rest import add_routes, engine_errors
from server.http.versions import add_version_routes
from server.http.ws import handle_websocket
from server.metrics import Metrics
from server.operations import operations
from server.page_rate import PageRate
from server.page_reads import PageReads
from server.restore_rate import RestoreRate
from server.rooms.access import Rooms
from server.rooms.fanout import Fanout, LocalFanout
from server.rooms.feeds import FeedHub
from server.rooms.registry import RoomRegistry
from server.rooms.store import RoomStore
from server.webhooks import WebhookConsumer

log = logging.getLogger(__name__)


class ConfigError(ValueError):
    """A configuration that cannot run (said in one line at startup)."""


def create_app(
    config: Config, hooks: Hooks | None = None, *, rules: Rules | None = None
) -> web.Application:
    """The server as an aiohttp application; `hooks` customise auth and react to changes;
    `rules` (engine.rules.model.load_rules) say which parts of rooms a writer may change.

    Raises:
        ConfigError: e.g. a webhook without a secret (and without `webhook_unsigned`), or
            rules this build cannot enforce yet.
    """
    if rules:
        try:
            check_enforceable(rules.rules)
        except RulesInvalid as exc:
            raise ConfigError(f"--rules: {exc}") from exc
        anonymous = config.auth_secret is None and not (hooks and hooks.authenticates)
        rules = dataclasses.replace(rules, anonymous_writers=anonymous)
        config = dataclasses.replace(config, rules=rules)
    if config.webhook_url and not config.webhook_secret and not config.webhook_unsigned:
        raise ConfigError(
            "--webhook needs --webhook-secret (or PERFORMER_WEBHOOK_SECRET) to sign its "
            "requests; pass --webhook-unsigned to send them unsigned"
        )
    _check_rates(config.limits)
    app = web.Application(
        middlewares=[engine_errors], client_max_size=config.limits.max_update_bytes
    )
    app[CONFIG] = config
    app[METRICS] = Metrics()
    app[HOOKS] = hooks or Hooks()
    app[AUTHORIZER] = Authorizer(config.auth_secret, app[HOOKS])
    app.cleanup_ctx.append(_storage)
    app.cleanup_ctx.append(_deliveries)
    app.cleanup_ctx.append(operations)
    app.cleanup_ctx.append(_watch_loop)
    app.on_shutdown.append(_drain_rooms)
    add_routes(app)
    add_change_routes(app)
    add_version_routes(app)
    add_console_routes(app)  # the operator console (server/http/console.py)
    app.router.add_get("/rooms/{room}", _websocket)
    app.router.add_get("/hocuspocus", _hocuspocus)
    _add_static(app, config)
    if app[AUTHORIZER].open:
        log.warning("no auth secret: the server is OPEN, anyone may read and write any room")
        log.warning(
            "writers are anonymous on an open server: user-based rules (client ids bound "
            "to users, per-user rules) cannot hold"
        )
    return app


def _check_rates(limits: Limits) -> None:
    for flag, value in (
        ("--page-bytes-per-second", limits.page_bytes_per_second),
        ("--pages-per-second", limits.pages_per_second),
        ("--restore-bytes-per-second", limits.restore_bytes_per_second),
    ):
        if value < 0:
            raise ConfigError(f"{flag} must be a whole number >= 0 (0: no limit)")


def open_storage(
    config: Config, metrics: Metrics, compute: Compute | None = None
) -> tuple[RoomStore, Fanout]:
    """Embedded LMDB by default; Redis Streams when several processes share rooms.
    `compute` is the worker pool big rooms' snapshots are built in."""
    docs = open_store(
        data_dir=config.data_dir,
        redis_url=config.redis_url,
        map_size=config.map_size,
        fsync=config.fsync,
        policy=config.compaction,
        retention=config.retention,
    )
    if not config.redis_url:
        return RoomStore(docs, metrics, compute=compute), LocalFanout()
    from engine.storage.redis_log import RedisLogStore
    from server.rooms.redis_fanout import RedisFanout

    assert isinstance(docs.log, RedisLogStore)
    warning = docs.log.durability_warning()
    if warning:
        log.warning("%s", warning)
    store = RoomStore(docs, metrics, shared=True, compute=compute)
    return store, RedisFanout(config.redis_url, docs.log.node, store.load)


async def _storage(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    app[COMPUTE] = Compute()
    store, fanout = open_storage(config, app[METRICS], app[COMPUTE])
    await store.start()
    await fanout.start()
    app[STORE] = store
    app[REGISTRY] = RoomRegistry(store, fanout, config, app[METRICS], app[HOOKS])
    app[ROOMS] = Rooms(app[REGISTRY])
    app[FEEDS] = FeedHub(
        store,
        sse_update,
        config.feed_queue_entries,
        queue_bytes=config.limits.send_buffer_bytes,
        streams_per_caller=config.limits.streams_per_caller,
    )
    app[LANE] = ComputeLane(config.compute)
    app[METRICS].watch_compute_lane(app[LANE])
    app[PAGES] = PageReads(config.limits.page_reads_per_caller)
    limits = config.limits
    app[PAGE_RATE] = PageRate.of(limits)
    app[METRICS].watch_pages(app[PAGES], app[PAGE_RATE])
    app[RESTORE_RATE] = RestoreRate(limits.restore_bytes_per_second)
    app[METRICS].watch_restores(app[RESTORE_RATE])
    store.deleted_listeners.append(app[FEEDS].room_deleted)
    store.deleted_listeners.append(app[LANE].cache.forget)
    try:
        yield
    finally:
        await app[FEEDS].close()
        await fanout.close()
        await store.close()  # waits for snapshots still building in the worker
        app[COMPUTE].close()
        app[LANE].close()


async def _watch_loop(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.get_running_loop().create_task(app[METRICS].watch_loop())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _deliveries(app: web.Application) -> AsyncIterator[None]:
    """on_change hooks and webhooks, each read from the durable log by its cursor."""
    config, hooks, metrics = app[CONFIG], app[HOOKS], app[METRICS]
    registry = app[REGISTRY]
    deliveries = []
    if hooks.watches_changes:
        deliveries.append(Delivery(ChangeHookConsumer(hooks, metrics), registry.store,
                                   registry.fanout, metrics))  # fmt: skip
    webhook = None
    if config.webhook_url:
        webhook = WebhookConsumer(
            config.webhook_url,
            config.webhook_secret,
            timeout=config.webhook_timeout_seconds,
            retry_seconds=config.webhook_retry_seconds,
            probe_seconds=config.webhook_probe_seconds,
        )
        deliveries.append(Delivery(webhook, registry.store, registry.fanout, metrics))
    archive = None
    if config.archive_dir is not None:  # the continuous archive (server/archive.py)
        archive = ArchiveConsumer(DirectoryTarget(config.archive_dir), registry.store,
                                  metrics, registry.fanout)  # fmt: skip
        deliveries.append(Delivery(archive, registry.store, registry.fanout, metrics))
        await archive.start()
    for delivery in deliveries:
        await delivery.start()
    await hooks.on_start(app[ROOMS])
    try:
        yield
    finally:
        for delivery in deliveries:
            await delivery.close()
        if archive is not None:
            await archive.close()
        if webhook is not None:
            await webhook.close()


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


async def _hocuspocus(request: web.Request) -> web.StreamResponse:
    app = request.app
    return await handle_hocuspocus(
        request,
        config=app[CONFIG],
        authorizer=app[AUTHORIZER],
        registry=app[REGISTRY],
        hooks=app[HOOKS],
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

    async def doc_page(_: web.Request) -> web.StreamResponse:
        page = static / "doc.html"
        if not page.exists():
            raise web.HTTPNotFound()
        return web.FileResponse(page, headers={"Cache-Control": "no-cache"})

    async def service_worker(_: web.Request) -> web.StreamResponse:
        worker = static / "sw.js"
        if not worker.exists():
            raise web.HTTPNotFound()
        return web.FileResponse(
            worker, headers={"Cache-Control": "no-cache", "Content-Type": "text/javascript"}
        )

    app.router.add_get("/", index)
    app.router.add_get("/doc", doc_page)
    app.router.add_get("/sw.js", service_worker)
    if static.is_dir():
        app.router.add_static("/static/", static)
