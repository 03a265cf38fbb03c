"""The one table of WebSocket close codes (44xx/45xx mirror the HTTP status they mean)."""

from __future__ import annotations

from enum import IntEnum


class Close(IntEnum):
    GOING_AWAY = 1001  # server shutting down; reconnect
    FRAME_TOO_BIG = 1009  # a frame over the size limit (sent by the WebSocket layer)
    MALFORMED = 4400  # a message that does not decode, or a bad room name
    UNAUTHORIZED = 4401  # missing, invalid or expired token
    FORBIDDEN = 4403  # token for another room
    SLOW_CONSUMER = 4408  # the client stopped reading; its send buffer is full
    TOO_LARGE = 4413  # update or document over its size limit
    INTERNAL = 4500  # a bug; the room is unaffected
    UNAVAILABLE = 4503  # room failed to load or its storage failed; reconnect later


REASONS: dict[Close, str] = {
    Close.GOING_AWAY: "server shutting down",
    Close.FRAME_TOO_BIG: "frame too big",
    Close.MALFORMED: "malformed message",
    Close.UNAUTHORIZED: "missing, invalid or expired token",
    Close.FORBIDDEN: "token does not grant this room",
    Close.SLOW_CONSUMER: "send queue full: client is not reading",
    Close.TOO_LARGE: "update or document too large",
    Close.INTERNAL: "internal error",
    Close.UNAVAILABLE: "room unavailable, retry later",
}


def reason(code: Close, detail: str | None = None) -> str:
    """A close reason: the table's words, with detail; WebSocket caps reasons at 123 bytes."""
    text = REASONS[code] if not detail else f"{REASONS[code]}: {detail}"
    encoded = text.encode("utf-8")[:123]
    return encoded.decode("utf-8", "ignore")
