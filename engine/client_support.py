"""Client building blocks: its errors, its reconnect backoff, and its local store.

Split from `engine.client` so that module holds only the connection logic; everything
here is re-exported there.
"""

from __future__ import annotations

import os
import random
import struct
from dataclasses import dataclass

from engine.errors import EngineError, PermissionDenied
from engine.storage import DocStore, LmdbKV, Retention

# Close codes that retrying cannot fix (see the server's close code table).
_AUTH_CLOSES = {4401: "token missing, invalid or expired", 4403: "token is for another room"}
_FATAL_CLOSES = {4400: "the server could not decode a message", 4413: "update too large"}
HTTP_TO_CLOSE = {401: 4401, 403: 4403}
# The server asks us to slow down (rate limited, slow consumer, room failed to load): keep
# backing off even if that connection had synced.
SLOW_DOWN_CLOSES = {4429, 4408, 4503}

_CONFIRMED_KEY = b"client-confirmed:"  # + room name; in the KV's "meta" space
_U64 = struct.Struct(">Q")


class AuthError(PermissionDenied):
    """The server refused the token (close 4401) or the room (4403); not retried."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"server closed the connection with {code}: {reason}")
        self.code = code


class ConnectionRejected(EngineError):
    """The server rejected what this client sends (4400, 4413); retrying would repeat it."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"server closed the connection with {code}: {reason}")
        self.code = code


class WriteDenied(PermissionDenied):
    """The server did not accept our edits (for example a read-only token)."""


class ClientClosed(EngineError):
    """The client was closed while something waited on it."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """Reconnect delays: exponential, capped, with jitter so clients do not stampede.

    The delay for attempt n is drawn from [d/2, d] with d = min(maximum, initial * 2^n).
    """

    initial: float = 0.25
    maximum: float = 10.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        ceiling = min(self.maximum, self.initial * 2.0 ** min(attempt, 32))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


class LocalStore:
    """The client's on-disk replica: every update (local and remote) and the confirmed mark.

    Marks are positions in this local log. Snapshots keep only the latest state; the
    client has no use for an audit trail.
    """

    def __init__(self, path: str | os.PathLike[str], room: str) -> None:
        self.kv = LmdbKV(path)
        self.docs = DocStore(self.kv, retention=Retention(keep_log=False, keep_snapshots=1))
        self.room = room
        self.last_seq = 0

    def load(self) -> list[bytes]:
        loaded = self.docs.load(self.room)
        self.last_seq = loaded.last_seq
        return loaded.updates

    def append(self, update: bytes) -> int:
        self.last_seq = self.docs.append(self.room, update)
        return self.last_seq

    def confirmed(self) -> int:
        raw = self.kv.get("meta", _CONFIRMED_KEY + self.room.encode("utf-8"))
        return 0 if raw is None else int(_U64.unpack(raw)[0])

    def set_confirmed(self, mark: int) -> None:
        self.kv.write([("meta", _CONFIRMED_KEY + self.room.encode("utf-8"), _U64.pack(mark))])

    def compact(self) -> None:
        if self.last_seq:
            self.docs.compact(self.room)

    def close(self) -> None:
        self.kv.close()


def fatal_error(code: int | None, reason: str) -> EngineError | None:
    if code in _AUTH_CLOSES:
        return AuthError(code, reason or _AUTH_CLOSES[code])
    if code in _FATAL_CLOSES:
        return ConnectionRejected(code, reason or _FATAL_CLOSES[code])
    return None
