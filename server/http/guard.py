"""What a request must show before it may write: an allowed origin, its real content type.

Browsers attach cookies to requests any page makes, so a server behind cookie auth would
take a write from a page on another site unless it checks where the request came from.
Browsers always send `Origin` on WebSocket upgrades and cross-site POSTs, and a page
cannot forge it; a request without one is not from a browser page (a script, the SDK)
and has nothing to exploit. A POST whose content type a page may send without a CORS
preflight (text/plain, forms) is refused as well, so a missing Origin check is never the
only guard.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web

from engine.errors import PermissionDenied, UnsupportedMediaType
from server.hooks import AuthRequest

ANY_ORIGIN = "*"


def normalized_origins(origins: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """`https://App.example/` -> `https://app.example` (how browsers write Origin)."""
    return tuple(o.strip().rstrip("/").lower() for o in origins if o.strip())


def check_origin(request: web.Request, allowed: tuple[str, ...]) -> None:
    """Refuse a browser request from an origin not in `allowed` (by default, only the
    server's own host).

    Raises:
        PermissionDenied: with the origin and the setting that would allow it.
    """
    origin = request.headers.get("Origin")
    if origin is None:
        return
    origin = origin.strip().lower()
    allowed = normalized_origins(allowed)
    if ANY_ORIGIN in allowed or origin in allowed:
        return
    if not allowed and urlsplit(origin).netloc == request.host.lower():
        return
    raise PermissionDenied(
        f"origin {origin!r} is not allowed to write or connect (--allowed-origins / "
        "Config.allowed_origins)"
    )


def require_content_type(request: web.Request, expected: str) -> None:
    """Refuse a POST that does not say it carries `expected`.

    Raises:
        UnsupportedMediaType: naming the type this route takes.
    """
    header = request.headers.get("Content-Type")
    kind = (header or "").split(";", 1)[0].strip().lower()
    if kind != expected:
        raise UnsupportedMediaType(
            f"{request.method} {request.rel_url.path} takes Content-Type: {expected} "
            f"(got {header or 'none'})"
        )


def auth_request(request: web.Request, token: str | None, room: str) -> AuthRequest:
    """The request as the authenticate hook sees it: headers and cookies included."""
    return AuthRequest(
        token=token,
        room=room,
        headers=request.headers,
        cookies=request.cookies,
        method=request.method,
        path=request.rel_url.path,
        remote=request.remote,
    )
