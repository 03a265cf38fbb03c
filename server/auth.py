"""Who may do what: the application's `authenticate` hook, or our room tokens.

Tokens are JWT (HS256) with claims `room`, `mode`, `exp`, `sub`. `room` is an exact room
name or a prefix ending in `*` (`team-*`). `mode` is `read` or `write`; a token without
one is read-only (a claim forgotten by another issuer must not grant writes). Without a secret
(and without an authenticate hook) the server is open: every caller may write every room.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict

import jwt

from engine.errors import EngineError, PermissionDenied, Unauthorized
from server.hooks import ADMIN_ROLE, AuthRequest, Grant, Hooks, ask_authenticate

log = logging.getLogger(__name__)

ALGORITHM = "HS256"


OPEN_GRANT = Grant()
AUTHENTICATE_TIMEOUT = 10.0
REMEMBERED_TOKENS = 4096  # verified tokens whose claims are kept (least recent dropped)
MAX_REMEMBERED_TOKEN = 4096  # characters; a longer token is verified every time


def issue_token(
    secret: str,
    room: str,
    *,
    read_only: bool = False,
    ttl: float = 3600,
    user: str | None = None,
    now: float | None = None,
    admin: bool = False,
) -> str:
    """Sign a token for `room` (exact, or a prefix ending in `*`); `admin` adds the claim
    `"role": "admin"`, which opens the operator console."""
    issued = time.time() if now is None else now
    claims: dict[str, object] = {
        "room": room,
        "mode": "read" if read_only else "write",
        "exp": int(issued + ttl),
        "iat": int(issued),
    }
    if user:
        claims["sub"] = user
    if admin:
        claims["role"] = ADMIN_ROLE
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def room_matches(pattern: str, room: str) -> bool:
    if pattern.endswith("*"):
        return room.startswith(pattern[:-1])
    return pattern == room


class Authorizer:
    """Decides each caller's grant. Args: secret: None for an open server; hooks: their
    `authenticate`, when defined, replaces the token check."""

    def __init__(self, secret: str | None, hooks: Hooks | None = None) -> None:
        self.secret = secret
        self.hooks = hooks if hooks is not None and hooks.authenticates else None
        self._verified: OrderedDict[str, dict[str, object]] = OrderedDict()

    @property
    def open(self) -> bool:
        return self.secret is None and self.hooks is None

    async def check(
        self, token: str | None, room: str, request: AuthRequest | None = None
    ) -> Grant:
        """The caller's grant for `room`, from the hook if there is one, else the token.
        `request` carries the HTTP request's headers and cookies to the hook.

        Raises:
            Unauthorized: refused (never anything else from a misbehaving hook; what it
                raised is logged, never sent: it may name a database or a password).
            PermissionDenied: a valid token for another room.
        """
        if self.hooks is None:
            return self.grant(token, room)
        asked = request if request is not None else AuthRequest(token, room)
        try:
            async with asyncio.timeout(AUTHENTICATE_TIMEOUT):
                grant = await ask_authenticate(self.hooks, asked)
        except EngineError:
            raise
        except Exception as exc:
            log.warning("room %r: authenticate hook raised %r: refused", room, exc, exc_info=exc)
            raise Unauthorized(
                "refused by the authenticate hook (it failed; see the server log)"
            ) from exc
        if grant is None:
            raise Unauthorized("refused by the authenticate hook")
        if not isinstance(grant, Grant):
            log.error("authenticate hook returned %r, not a Grant: refused", grant)
            raise Unauthorized("the authenticate hook returned something that is not a Grant")
        return grant

    def grant(self, token: str | None, room: str) -> Grant:
        """The grant a token gives for `room`.

        Raises:
            Unauthorized: missing, malformed, tampered or expired token.
            PermissionDenied: the token is valid but names another room.
        """
        if self.secret is None:
            return OPEN_GRANT
        claims = self._claims(token)
        pattern = str(claims["room"])
        if not room_matches(pattern, room):
            raise PermissionDenied(f"token is for room {pattern!r}")
        mode = claims.get("mode", "read")
        if mode not in ("read", "write"):
            raise Unauthorized(f"token mode {mode!r} is neither read nor write")
        user = claims.get("sub")
        expires = claims["exp"]
        assert isinstance(expires, (int, float))  # PyJWT validated it
        role = claims.get("role")
        return Grant(
            user=str(user) if user else None,
            mode="write" if mode == "write" else "read",
            expires_at=float(expires),
            role=role if isinstance(role, str) else None,
        )

    def pattern(self, token: str | None) -> str:
        """The room pattern a valid token covers (for listing rooms); "*" when open or
        when the application authenticates (it decides per room)."""
        if self.secret is None or self.hooks is not None:
            return "*"
        return str(self._claims(token)["room"])

    def _claims(self, token: str | None) -> dict[str, object]:
        if self.secret is None:
            raise Unauthorized("no secret configured")
        if not token:
            raise Unauthorized("a token is required")
        known = self._verified.get(token)
        if known is not None and _still_valid(known):
            self._verified.move_to_end(token)
            return known
        try:
            claims: dict[str, object] = jwt.decode(
                token, self.secret, algorithms=[ALGORITHM], options={"require": ["exp", "room"]}
            )
        except jwt.ExpiredSignatureError as exc:
            self._verified.pop(token, None)
            raise Unauthorized("token expired") from exc
        except jwt.InvalidTokenError as exc:
            raise Unauthorized(f"invalid token: {exc}") from exc
        if not isinstance(claims.get("room"), str):
            raise Unauthorized("token's room claim is not a string")
        self._remember(token, claims)
        return claims

    def _remember(self, token: str, claims: dict[str, object]) -> None:
        """Keep a verified token's claims: a caller repeating requests (a flood of views
        or pages) costs a lookup, not an HMAC and a JSON decode on the event loop each."""
        if len(token) > MAX_REMEMBERED_TOKEN or "nbf" in claims:
            return  # odd tokens are checked in full each time
        self._verified[token] = claims
        while len(self._verified) > REMEMBERED_TOKENS:
            self._verified.popitem(last=False)


def _still_valid(claims: dict[str, object]) -> bool:
    """Whether remembered claims are still in force: their `exp` is still ahead (the
    rest was checked when the token was verified, and a signed token cannot change)."""
    expires = claims["exp"]
    return isinstance(expires, int | float) and time.time() < expires


def bearer_token(authorization: str | None, query_token: str | None) -> str | None:
    """The token from `Authorization: Bearer` or, for browsers, `?token=`."""
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return query_token
