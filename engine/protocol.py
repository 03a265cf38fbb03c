"""The y-websocket wire protocol (y-protocols `sync`, `awareness`, `auth`), with no I/O.

Every WebSocket binary frame holds exactly one message::

    message   = varuint(type) payload
    type 0    sync:            varuint(step) varbytes      step 0 = step1 (state vector),
                                                           1 = step2 (diff), 2 = update
    type 1    awareness:       varbytes(awareness update)
    type 2    auth:            varuint(0 = permission denied) varstring(reason)
    type 3    query awareness: (empty)
    type 100  saved (ours):    varuint(count) varuint(seq)  opt-in, see `Saved`

Integers are lib0 varuints (7 bits per byte, least significant group first). Decoding is
bounded: a varuint over 64 bits, a length past the end, an unknown type or trailing bytes
raise `ProtocolError` with the offset, never IndexError and never a hang.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from engine.errors import ProtocolError

MESSAGE_SYNC = 0
MESSAGE_AWARENESS = 1
MESSAGE_AUTH = 2
MESSAGE_QUERY_AWARENESS = 3
MESSAGE_SAVED = 100

SYNC_STEP1 = 0
SYNC_STEP2 = 1
SYNC_UPDATE = 2

AUTH_PERMISSION_DENIED = 0

_MAX_VARUINT_BITS = 64


@dataclass(frozen=True, slots=True)
class SyncStep1:
    """ "Here is my state vector; send me what I lack"."""

    state_vector: bytes


@dataclass(frozen=True, slots=True)
class SyncStep2:
    """The answer to SyncStep1: a Yjs update with everything the asker lacks."""

    update: bytes


@dataclass(frozen=True, slots=True)
class Update:
    """A Yjs update made after the initial sync."""

    update: bytes


@dataclass(frozen=True, slots=True)
class AwarenessUpdate:
    """Presence states (an encoded awareness update, see `decode_awareness`)."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class PermissionDeniedMessage:
    """Tells a client why its message was not accepted (read-only token, quota)."""

    reason: str


@dataclass(frozen=True, slots=True)
class QueryAwareness:
    """Asks the peer to send every awareness state it knows."""


@dataclass(frozen=True, slots=True)
class Saved:
    """Our opt-in extension: the first `count` update messages this connection sent are
    durable on the server, and the room's log has reached `seq`.

    Stock y-websocket clients never ask for it (they connect without `?ack=1`), so they
    never receive it.
    """

    count: int
    seq: int


Message = (
    SyncStep1
    | SyncStep2
    | Update
    | AwarenessUpdate
    | PermissionDeniedMessage
    | QueryAwareness
    | Saved
)


@dataclass(frozen=True, slots=True)
class AwarenessEntry:
    """One client's presence state inside an awareness update; `state` None = removed."""

    client_id: int
    clock: int
    state_json: str

    @property
    def removed(self) -> bool:
        return self.state_json == "null"


# --------------------------------------------------------------------------- primitives


def write_varuint(out: bytearray, value: int) -> None:
    """Append a lib0 varuint."""
    if value < 0:
        raise ValueError("varuint must be >= 0")
    while value > 0x7F:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)


def write_varbytes(out: bytearray, data: bytes) -> None:
    write_varuint(out, len(data))
    out += data


def write_varstring(out: bytearray, text: str) -> None:
    """Length in UTF-8 bytes, as lib0 does (not in code points)."""
    write_varbytes(out, text.encode("utf-8"))


class Reader:
    """A bounded cursor over one message."""

    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.pos = 0

    def varuint(self) -> int:
        buf, pos = self.buf, self.pos
        try:
            byte = buf[pos]
            if byte < 0x80:  # one byte: most lengths, small clocks
                self.pos = pos + 1
                return byte
            result = byte & 0x7F
            shift = 7
            while True:
                pos += 1
                byte = buf[pos]
                if byte < 0x80:
                    result |= byte << shift
                    break
                result |= (byte & 0x7F) << shift
                shift += 7
                if shift >= _MAX_VARUINT_BITS:
                    raise ProtocolError(self.pos, "varuint longer than 64 bits")
        except IndexError:
            raise ProtocolError(self.pos, "truncated varuint") from None
        if result >> _MAX_VARUINT_BITS:
            raise ProtocolError(self.pos, "varuint longer than 64 bits")
        self.pos = pos + 1
        return result

    def varbytes(self) -> bytes:
        start = self.pos
        length = self.varuint()
        end = self.pos + length
        if end > len(self.buf):
            raise ProtocolError(start, f"length {length} runs past the end of the message")
        data = self.buf[self.pos : end]
        self.pos = end
        return bytes(data)

    def varstring(self) -> str:
        start = self.pos
        raw = self.varbytes()
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError(start, "string is not valid UTF-8") from exc

    def expect_end(self) -> None:
        if self.pos != len(self.buf):
            raise ProtocolError(self.pos, f"{len(self.buf) - self.pos} trailing bytes")


# --------------------------------------------------------------------------- messages


def decode(buf: bytes) -> Message:
    """Decode one frame into a typed message.

    Raises:
        ProtocolError: on any malformed input, with the offset where it went wrong.
    """
    reader = Reader(buf)
    kind = reader.varuint()
    message: Message
    if kind == MESSAGE_SYNC:
        message = _decode_sync(reader)
    elif kind == MESSAGE_AWARENESS:
        message = AwarenessUpdate(reader.varbytes())
    elif kind == MESSAGE_AUTH:
        at = reader.pos
        if reader.varuint() != AUTH_PERMISSION_DENIED:
            raise ProtocolError(at, "unknown auth message type")
        message = PermissionDeniedMessage(reader.varstring())
    elif kind == MESSAGE_QUERY_AWARENESS:
        message = QueryAwareness()
    elif kind == MESSAGE_SAVED:
        message = Saved(reader.varuint(), reader.varuint())
    else:
        raise ProtocolError(0, f"unknown message type {kind}")
    reader.expect_end()
    return message


def _decode_sync(reader: Reader) -> Message:
    at = reader.pos
    step = reader.varuint()
    payload = reader.varbytes()
    if step == SYNC_STEP1:
        return SyncStep1(payload)
    if step == SYNC_STEP2:
        return SyncStep2(payload)
    if step == SYNC_UPDATE:
        return Update(payload)
    raise ProtocolError(at, f"unknown sync step {step}")


def encode(message: Message) -> bytes:
    """Encode a typed message into one frame, byte-identical to y-protocols."""
    out = bytearray()
    match message:
        case SyncStep1(state_vector):
            _sync_header(out, SYNC_STEP1, state_vector)
        case SyncStep2(update):
            _sync_header(out, SYNC_STEP2, update)
        case Update(update):
            _sync_header(out, SYNC_UPDATE, update)
        case AwarenessUpdate(payload):
            out.append(MESSAGE_AWARENESS)
            write_varbytes(out, payload)
        case PermissionDeniedMessage(reason):
            out.append(MESSAGE_AUTH)
            out.append(AUTH_PERMISSION_DENIED)
            write_varstring(out, reason)
        case QueryAwareness():
            out.append(MESSAGE_QUERY_AWARENESS)
        case Saved(count, seq):
            write_varuint(out, MESSAGE_SAVED)
            write_varuint(out, count)
            write_varuint(out, seq)
    return bytes(out)


def _sync_header(out: bytearray, step: int, payload: bytes) -> None:
    out.append(MESSAGE_SYNC)
    out.append(step)
    write_varbytes(out, payload)


def encode_parts(message: SyncStep2 | Update) -> tuple[bytes, bytes]:
    """A sync message as (header, payload): the same bytes as `encode`, with a large
    payload left as it is, so a room's first sync can send one stored or encoded
    document to many clients without copying it for each."""
    header = bytearray(
        (MESSAGE_SYNC, SYNC_STEP2 if isinstance(message, SyncStep2) else SYNC_UPDATE)
    )
    write_varuint(header, len(message.update))
    return bytes(header), message.update


def encode_update(update: bytes) -> bytes:
    """The hot path of broadcasting: one sync-update frame, built once per update."""
    out = bytearray(b"\x00\x02")
    write_varbytes(out, update)
    return bytes(out)


# --------------------------------------------------------------------------- awareness


def decode_awareness(payload: bytes) -> list[AwarenessEntry]:
    """Decode an awareness update: varuint(n), then n x (client id, clock, JSON state).

    The JSON is checked to be well-formed, so a client cannot make peers choke on it.
    """
    reader = Reader(payload)
    count = reader.varuint()
    if count > len(payload):
        raise ProtocolError(0, f"awareness update claims {count} entries")
    entries = []
    for _ in range(count):
        client_id = reader.varuint()
        clock = reader.varuint()
        at = reader.pos
        state_json = reader.varstring()
        try:
            json.loads(state_json)
        except (ValueError, RecursionError) as exc:
            raise ProtocolError(at, "awareness state is not valid JSON") from exc
        entries.append(AwarenessEntry(client_id, clock, state_json))
    reader.expect_end()
    return entries


def encode_awareness(entries: list[AwarenessEntry]) -> bytes:
    out = bytearray()
    write_varuint(out, len(entries))
    for entry in entries:
        write_varuint(out, entry.client_id)
        write_varuint(out, entry.clock)
        write_varstring(out, entry.state_json)
    return bytes(out)
