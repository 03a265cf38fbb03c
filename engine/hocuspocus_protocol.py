"""The Hocuspocus wire protocol (what `@hocuspocus/provider` 3.x and 4.x speak), no I/O.

Many documents share one WebSocket, so every frame starts with the document's name::

    frame     = varstring(document) varuint(type) payload
    type 0    sync:            as y-websocket (step 1, step 2, update)
    type 1    awareness:       as y-websocket
    type 2    auth:            varuint(0 = token)         varstring(token) [varstring(version)]
                               varuint(1 = denied)        varstring(reason)
                               varuint(2 = authenticated) varstring("read-write" | "readonly")
    type 3    query awareness: (empty)
    type 4    sync reply:      a sync message that asks for no step 1 in return
    type 5    stateless:       varstring(payload), never stored
    type 7    close:           client -> server: leave this document;
                               server -> client: varstring(reason), the document is closed
    type 8    sync status:     varuint(1 = the update was saved, 0 = it was refused)
    type 10   pong (4.x):      a one-byte frame with no document name

After the name and type, sync, awareness and query-awareness payloads are byte for byte
those of y-websocket, so `engine.protocol` decodes them (after `as_y_websocket`). The 4.x
provider appends its version to the token message; it is read and ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import ProtocolError
from engine.protocol import Reader, write_varstring, write_varuint

SYNC = 0
AWARENESS = 1
AUTH = 2
QUERY_AWARENESS = 3
SYNC_REPLY = 4
STATELESS = 5
BROADCAST_STATELESS = 6
CLOSE = 7
SYNC_STATUS = 8
PING = 9
PONG = 10

AUTH_TOKEN = 0
AUTH_PERMISSION_DENIED = 1
AUTH_AUTHENTICATED = 2

SCOPE_READ_WRITE = "read-write"
SCOPE_READ_ONLY = "readonly"

PONG_FRAME = bytes((PONG,))
"""The 4.x provider's answer to a connection-level ping: no document name."""


@dataclass(frozen=True, slots=True)
class Envelope:
    """One frame split into its document, its type, and the message from the type on."""

    document: str
    kind: int
    body: bytes

    def as_y_websocket(self) -> bytes:
        """The y-websocket frame carrying the same message (sync reply -> sync)."""
        if self.kind == SYNC_REPLY:
            return bytes((SYNC,)) + self.body[1:]
        return self.body


def open_envelope(frame: bytes) -> Envelope:
    """Split a frame into document name, type and body.

    Raises:
        ProtocolError: the name or the type does not decode (the frame cannot be
            attributed to a document at all).
    """
    reader = Reader(frame)
    document = reader.varstring()
    at = reader.pos
    kind = reader.varuint()
    return Envelope(document, kind, frame[at:])


def read_token(body: bytes) -> str:
    """The token of a client's auth message (the 4.x version string after it is ignored).

    Raises:
        ProtocolError: not a token message, or it does not decode.
    """
    reader = Reader(body)
    reader.varuint()  # AUTH
    at = reader.pos
    if reader.varuint() != AUTH_TOKEN:
        raise ProtocolError(at, "a client's auth message must carry a token")
    token = reader.varstring()
    if reader.pos < len(reader.buf):
        reader.varstring()  # the 4.x provider's version
    reader.expect_end()
    return token


def read_stateless(body: bytes) -> str:
    """The payload of a stateless message. Raises: ProtocolError."""
    reader = Reader(body)
    reader.varuint()  # STATELESS
    payload = reader.varstring()
    reader.expect_end()
    return payload


@dataclass(frozen=True, slots=True)
class AuthAnswer:
    """The server's answer to a token: `scope` when authenticated, else `denied`."""

    scope: str | None
    denied: str | None


def read_auth_answer(body: bytes) -> AuthAnswer:
    """The server's auth message, as a client reads it. Raises: ProtocolError."""
    reader = Reader(body)
    reader.varuint()  # AUTH
    at = reader.pos
    kind = reader.varuint()
    if kind == AUTH_AUTHENTICATED:
        answer = AuthAnswer(reader.varstring(), None)
    elif kind == AUTH_PERMISSION_DENIED:
        answer = AuthAnswer(None, reader.varstring())
    else:
        raise ProtocolError(at, f"unexpected auth message type {kind}")
    reader.expect_end()
    return answer


def read_sync_status(body: bytes) -> bool:
    """True when the server saved the update. Raises: ProtocolError."""
    reader = Reader(body)
    reader.varuint()  # SYNC_STATUS
    saved = reader.varuint() == 1
    reader.expect_end()
    return saved


def read_close_reason(body: bytes) -> str:
    """The reason of a server's close message (empty when there is none)."""
    reader = Reader(body)
    reader.varuint()  # CLOSE
    return reader.varstring() if reader.pos < len(reader.buf) else ""


# --------------------------------------------------------------------------- writing


def document_prefix(document: str) -> bytes:
    """What goes before every message about `document`."""
    out = bytearray()
    write_varstring(out, document)
    return bytes(out)


def wrap(document: str, message: bytes) -> bytes:
    """A y-websocket frame (sync, awareness, query awareness) for `document`."""
    return document_prefix(document) + message


def _with_type(document: str, kind: int) -> bytearray:
    out = bytearray(document_prefix(document))
    write_varuint(out, kind)
    return out


def token_message(document: str, token: str) -> bytes:
    out = _with_type(document, AUTH)
    write_varuint(out, AUTH_TOKEN)
    write_varstring(out, token)
    return bytes(out)


def authenticated(document: str, read_only: bool) -> bytes:
    out = _with_type(document, AUTH)
    write_varuint(out, AUTH_AUTHENTICATED)
    write_varstring(out, SCOPE_READ_ONLY if read_only else SCOPE_READ_WRITE)
    return bytes(out)


def permission_denied(document: str, reason: str) -> bytes:
    out = _with_type(document, AUTH)
    write_varuint(out, AUTH_PERMISSION_DENIED)
    write_varstring(out, reason)
    return bytes(out)


def sync_status(document: str, saved: bool) -> bytes:
    out = _with_type(document, SYNC_STATUS)
    write_varuint(out, 1 if saved else 0)
    return bytes(out)


def stateless(document: str, payload: str) -> bytes:
    out = _with_type(document, STATELESS)
    write_varstring(out, payload)
    return bytes(out)


def close_document(document: str, reason: str | None = None) -> bytes:
    """Server -> client carries a reason; client -> server carries none."""
    out = _with_type(document, CLOSE)
    if reason is not None:
        write_varstring(out, reason)
    return bytes(out)
