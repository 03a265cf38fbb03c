"""The operator console: `GET /console`, the routes only operators need (`GET /v1/stats`,
delivery state in server/http/deliveries.py), and `GET /v1/rooms/{room}/connections`.

Who may open it: see server/http/admin.py (an admin grant; without auth, localhost
unless `--console-open`). Everything else the console shows comes from the public
REST and SSE routes, so a script can get it too. Nothing here runs unless someone
asks: a server whose console nobody has open does no work for it.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from aiohttp import web

from server.config import Config
from server.http.admin import console_grant
from server.http.deliveries import add_delivery_routes
from server.http.keys import CONFIG, METRICS, REGISTRY
from server.http.rest import grant_for
from server.http.room_stats import connections_of
from server.metrics import Metrics

CONSOLE_PAGE = "console.html"
SECRET_SETTINGS = ("auth_secret", "webhook_secret")
STARTED = time.time()


async def console_page(request: web.Request) -> web.StreamResponse:
    await console_grant(request)
    page = request.app[CONFIG].static_dir / CONSOLE_PAGE
    if not page.exists():
        return web.Response(
            text="The console is not built: run `npm run build` in client_js/.", status=404
        )
    return web.FileResponse(
        page,
        headers={
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",  # the URL may carry the admin token
            "X-Frame-Options": "DENY",
        },
    )


async def stats(request: web.Request) -> web.Response:
    """Counters for the console's charts (the page derives rates from two samples) and
    the server's settings without secrets. Admin only, like the console."""
    await console_grant(request)
    registry = request.app[REGISTRY]
    return web.json_response(
        {
            "ts": time.time(),
            "uptime_seconds": time.time() - STARTED,
            "rooms_loaded": len(registry.rooms),
            "connections": sum(len(actor.peers) for actor in registry.rooms.values()),
            "memory_bytes": _resident_bytes(),
            **_counters(request.app[METRICS]),
            "settings": public_settings(request.app[CONFIG]),
        }
    )


async def room_connections(request: web.Request) -> web.Response:
    """`GET /v1/rooms/{room}/connections`: who is connected now (read token)."""
    room = request.match_info["room"]
    await grant_for(request, room)
    actor = request.app[REGISTRY].rooms.get(room)
    return web.json_response({"room": room, "connections": connections_of(actor)})


def _counters(metrics: Metrics) -> dict[str, float]:
    sample = metrics.registry.get_sample_value
    return {
        "updates_total": sample("performer_updates_total") or 0.0,
        "commit_seconds_sum": sample("performer_commit_seconds_sum") or 0.0,
        "commit_count": sample("performer_commit_seconds_count") or 0.0,
        "loop_stall_seconds_sum": sample("performer_loop_stall_seconds_sum") or 0.0,
        "loop_stalls_over_50ms": _stalls_over(sample, "0.05"),
    }


def _stalls_over(sample: Any, bound: str) -> float:
    total = sample("performer_loop_stall_seconds_count") or 0.0
    within = sample("performer_loop_stall_seconds_bucket", {"le": bound}) or 0.0
    return float(total - within)


def _resident_bytes() -> int | None:
    """This process's resident memory (Linux /proc); None where that is not readable."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def public_settings(config: Config) -> dict[str, Any]:
    """The configuration as JSON, secrets replaced by whether they are set, credentials
    dropped from URLs."""
    settings = asdict(config)
    for name in SECRET_SETTINGS:
        settings[name] = "(set)" if settings.get(name) else None
    for name in ("redis_url", "webhook_url"):
        if settings.get(name):
            settings[name] = _without_credentials(str(settings[name]))
    return {key: _jsonable(value) for key, value in settings.items()}


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def add_console_routes(app: web.Application) -> None:
    app.router.add_get("/console", console_page)
    app.router.add_get("/v1/stats", stats)
    app.router.add_get("/v1/rooms/{room}/connections", room_connections)
    add_delivery_routes(app)
