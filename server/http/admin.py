"""Who counts as an operator: the admin grant, or (without auth) a request from this machine.

An admin grant is a JWT made with `performer token --admin` (claim `"role": "admin"`), or
`Grant(role="admin")` from the authenticate hook, asked for room "*". A server without
auth has no admins: it answers operator routes only to requests from this machine
(loopback, and not relayed by a proxy), unless `--console-open` says otherwise.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from aiohttp import web

from engine.errors import PermissionDenied
from server.auth import OPEN_GRANT, bearer_token
from server.hooks import Grant
from server.http.guard import auth_request
from server.http.keys import AUTHORIZER, CONFIG

FORWARDING_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")


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
