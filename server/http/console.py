"""The operator console: `GET /console`, and the one route only it needs, `GET /v1/stats`.

Who may open it: a caller whose grant has the admin role (a JWT made with `performer
token --admin`, or `Grant(role="admin")` from the authenticate hook, asked for room
"*"). A server without auth has no admins: it answers the console only to requests
from this machine (loopback, and not relayed by a proxy), unless `--console-open` says
otherwise. Everything else the console shows comes from the public REST and SSE routes,
so a script can get it too. Nothing here runs unless someone asks: a server whose
console nobody has open does no work for it.
"""

from __future__ import annotations

import ipaddress
import os
import time
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from aiohttp import web

from engine.errors import PermissionDenied
from server.auth import OPEN_GRANT, bearer_token
from server.config import Config
from server.hooks import Grant
from server.http.guard import auth_request
from server.http.keys import AUTHORIZER, CONFIG, METRICS, REGISTRY
from server.http.rest import grant_for
from server.http.room_stats import connections_of
from server.metrics import Metrics

CONSOLE_PAGE = "console.html"
FORWARDING_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")
SECRET_SETTINGS = ("auth_secret", "webhook_secret")
STARTED = time.time()


def is_local(remote: str | None, headers: Mapping[str, str]) -> bool:
    """A request from this machine: a loopback peer address, and no proxy header (a
    reverse proxy on the same host would make every visitor look local)."""
    if any(name in headers for name in FORWARDING_HEADERS):
        return False
    if not remote:
        return False
    try:
        address = ipaddress.ip_address(remote.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


async def console_grant(request: web.Request) -> Grant:
    """The caller's admin grant, or a refusal.

    Raises:
        Unauthorized: auth is on and there is no valid token (401).
        PermissionDenied: not an admin, or (without auth) not from this machine (403).
    """
    authorizer = request.app[AUTHORIZER]
    if authorizer.open:
        if request.app[CONFIG].console_open or is_local(request.remote, request.headers):
            return OPEN_GRANT
        raise PermissionDenied(
            "without auth the console answers only requests from localhost "
            "(--console-open serves it to any address)"
        )
    token = bearer_token(request.headers.get("Authorization"), request.query.get("token"))
    grant = await authorizer.check(token, "*", auth_request(request, token, "*"))
    if not grant.is_admin:
        raise PermissionDenied('the console needs an admin grant ("role": "admin")')
    return grant


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
