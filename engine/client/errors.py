"""What the client raises, and what each close code from the server means to it.

The client's errors are branches of the engine's one exception tree (`engine.errors`)::

    EngineError
     ├── PermissionDenied
     │    ├── AuthError          the server refused the token (4401) or the room (4403)
     │    └── WriteDenied        the server did not accept our edits (read-only token)
     ├── ConnectionRejected     the server rejects what we send (4400, 4413)
     ├── ClientClosed           the client was closed while something waited on it
     └── StorageError
          └── ReplicaInUse      another open client holds this replica in this process

How the client reacts to a close code is decided in one place, `close_action`, over
`CLOSE_ACTIONS`, which is read from the engine's one error table (`engine.errors`).
"""

from __future__ import annotations

from enum import Enum

from engine.errors import ERROR_TABLE, Close, EngineError, PermissionDenied, Retry, StorageError


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


class ReplicaInUse(StorageError):
    """Another open client in this process already holds this server + room in this store.

    Two writers on one local log would interleave their positions; use one client per
    room, or another `store_path`, or `store_path=None`.
    """


class CloseAction(Enum):
    """What the client does after the server closes the connection."""

    RETRY = "retry"  # reconnect with backoff; a connection that had synced resets it
    SLOW_DOWN = "slow down"  # reconnect, and keep backing off even after a sync
    AUTH = "auth"  # stop: AuthError
    REJECT = "reject"  # stop: ConnectionRejected


def _action(code: Close, retry: Retry) -> CloseAction:
    if retry is Retry.SLOW_DOWN:
        return CloseAction.SLOW_DOWN
    if retry is Retry.BACKOFF:
        return CloseAction.RETRY
    return CloseAction.AUTH if code in (Close.UNAUTHORIZED, Close.FORBIDDEN) else CloseAction.REJECT


# The server's close codes as this client acts on them, read from the engine's one error
# table. Any code not listed (1006 dropped, a code from a proxy) is RETRY. 1009 (a frame
# over the server's limit) is REJECT: sending the same frame again cannot succeed.
CLOSE_ACTIONS: dict[int, tuple[CloseAction, str]] = {
    int(meaning.close): (_action(meaning.close, meaning.retry), meaning.reason)
    for _, meaning in reversed(ERROR_TABLE)
}

# A refused WebSocket handshake carries an HTTP status instead of a close code.
HANDSHAKE_CLOSES = {401: 4401, 403: 4403}


def close_action(code: int | None) -> CloseAction:
    """How to react to close `code` (None: the connection failed without one)."""
    if code is None or code not in CLOSE_ACTIONS:
        return CloseAction.RETRY
    return CLOSE_ACTIONS[code][0]


def close_error(code: int | None, reason: str) -> EngineError | None:
    """The error that ends the client for good after close `code`, or None to reconnect."""
    action = close_action(code)
    if code is None or action not in (CloseAction.AUTH, CloseAction.REJECT):
        return None
    reason = reason or CLOSE_ACTIONS[code][1]
    return (
        AuthError(code, reason) if action is CloseAction.AUTH else ConnectionRejected(code, reason)
    )
