"""Room tokens: JWT (HS256) with claims `room`, `mode`, `exp`, `sub`.

`room` is an exact room name or a prefix ending in `*` (`team-*`). `mode` is `read` or
`write`. Without a secret the server is open: every caller may write every room.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt

from engine.errors import EngineError

ALGORITHM = "HS256"


class AuthError(EngineError):
    """No token, a bad one, or an expired one (401 / close 4401)."""


class RoomForbidden(EngineError):
    """A valid token that does not cover this room (403 / close 4403)."""


@dataclass(frozen=True, slots=True)
class Grant:
    """What a caller may do in one room."""

    can_write: bool
    user: str | None
    expires_at: float | None


OPEN_GRANT = Grant(can_write=True, user=None, expires_at=None)


def issue_token(
    secret: str,
    room: str,
    *,
    read_only: bool = False,
    ttl: float = 3600,
    user: str | None = None,
    now: float | None = None,
) -> str:
    """Sign a token for `room` (exact, or a prefix ending in `*`)."""
    issued = time.time() if now is None else now
    claims: dict[str, object] = {
        "room": room,
        "mode": "read" if read_only else "write",
        "exp": int(issued + ttl),
        "iat": int(issued),
    }
    if user:
        claims["sub"] = user
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def room_matches(pattern: str, room: str) -> bool:
    if pattern.endswith("*"):
        return room.startswith(pattern[:-1])
    return pattern == room


class Authorizer:
    """Checks tokens against rooms. Args: secret: None for an open server."""

    def __init__(self, secret: str | None) -> None:
        self.secret = secret

    @property
    def open(self) -> bool:
        return self.secret is None

    def grant(self, token: str | None, room: str) -> Grant:
        """The grant a token gives for `room`.

        Raises:
            AuthError: missing, malformed, tampered or expired token.
            RoomForbidden: the token is valid but names another room.
        """
        if self.secret is None:
            return OPEN_GRANT
        claims = self._claims(token)
        pattern = str(claims["room"])
        if not room_matches(pattern, room):
            raise RoomForbidden(f"token is for room {pattern!r}")
        mode = claims.get("mode", "write")
        if mode not in ("read", "write"):
            raise AuthError(f"token mode {mode!r} is neither read nor write")
        user = claims.get("sub")
        expires = claims["exp"]
        assert isinstance(expires, (int, float))  # PyJWT validated it
        return Grant(
            can_write=mode == "write", user=str(user) if user else None, expires_at=float(expires)
        )

    def pattern(self, token: str | None) -> str:
        """The room pattern a valid token covers (for listing rooms); "*" when open."""
        if self.secret is None:
            return "*"
        return str(self._claims(token)["room"])

    def _claims(self, token: str | None) -> dict[str, object]:
        if self.secret is None:
            raise AuthError("no secret configured")
        if not token:
            raise AuthError("a token is required")
        try:
            claims: dict[str, object] = jwt.decode(
                token, self.secret, algorithms=[ALGORITHM], options={"require": ["exp", "room"]}
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthError("token expired") from exc
        except jwt.InvalidTokenError as exc:
            raise AuthError(f"invalid token: {exc}") from exc
        if not isinstance(claims.get("room"), str):
            raise AuthError("token's room claim is not a string")
        return claims


def bearer_token(authorization: str | None, query_token: str | None) -> str | None:
    """The token from `Authorization: Bearer` or, for browsers, `?token=`."""
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return query_token
