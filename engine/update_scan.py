"""A bounded walk over a Yjs update (v1) that reads its structure without building it.

It yields the client ids that authored structs (the audit trail records them) and rejects
updates nested deeper than a limit before pycrdt sees them, so a 200,000-level nested
value cannot exhaust a stack anywhere. Layout as in Yjs `UpdateDecoderV1` /
`readClientsStructRefs`, and lib0 `readAny` for embedded JSON-like values.
"""

from __future__ import annotations

from engine.errors import ProtocolError
from engine.protocol import Reader

MAX_NESTING = 256

_BITS5 = 0x1F
_HAS_ORIGIN = 0x80
_HAS_RIGHT_ORIGIN = 0x40
_HAS_PARENT_SUB = 0x20
_TYPE_REFS_WITH_KEY = (3, 5)  # YXmlElement, YXmlHook carry a node name


def scan_update(update: bytes, *, max_nesting: int = MAX_NESTING) -> tuple[int, ...]:
    """Walk every struct and the delete set of `update`; return the authoring client ids.

    Raises:
        ProtocolError: the update is malformed or nested deeper than `max_nesting`.
    """
    reader = Reader(update)
    clients = []
    for _ in range(_count(reader)):
        structs = reader.varuint()
        clients.append(reader.varuint())
        reader.varuint()  # first clock
        for _ in range(min(structs, len(update))):
            _skip_struct(reader, max_nesting)
    for _ in range(_count(reader)):  # delete set: client, n x (clock, len)
        reader.varuint()
        for _ in range(_count(reader)):
            reader.varuint()
            reader.varuint()
    reader.expect_end()
    return tuple(clients)


def _count(reader: Reader) -> int:
    at = reader.pos
    count = reader.varuint()
    if count > len(reader.buf):
        raise ProtocolError(at, f"count {count} is larger than the update")
    return count


def _byte(reader: Reader) -> int:
    if reader.pos >= len(reader.buf):
        raise ProtocolError(reader.pos, "update is truncated")
    value = reader.buf[reader.pos]
    reader.pos += 1
    return value


def _skip(reader: Reader, size: int) -> None:
    if reader.pos + size > len(reader.buf):
        raise ProtocolError(reader.pos, "update is truncated")
    reader.pos += size


def _skip_struct(reader: Reader, max_nesting: int) -> None:
    info = _byte(reader)
    kind = info & _BITS5
    if kind in (0, 10):  # GC or Skip: a length
        reader.varuint()
        return
    if info & _HAS_ORIGIN:
        reader.varuint()
        reader.varuint()
    if info & _HAS_RIGHT_ORIGIN:
        reader.varuint()
        reader.varuint()
    if not info & (_HAS_ORIGIN | _HAS_RIGHT_ORIGIN):
        if reader.varuint() == 1:
            reader.varbytes()  # root type name
        else:
            reader.varuint()
            reader.varuint()  # parent item id
        if info & _HAS_PARENT_SUB:
            reader.varbytes()
    _skip_content(reader, kind, max_nesting)


def _skip_content(reader: Reader, kind: int, max_nesting: int) -> None:
    if kind == 1:  # deleted: length
        reader.varuint()
    elif kind == 2:  # JSON: n strings
        for _ in range(_count(reader)):
            reader.varbytes()
    elif kind in (3, 4, 5):  # binary, string, embed
        reader.varbytes()
    elif kind == 6:  # format: key, JSON value
        reader.varbytes()
        reader.varbytes()
    elif kind == 7:  # type
        if reader.varuint() in _TYPE_REFS_WITH_KEY:
            reader.varbytes()
    elif kind == 8:  # any: n values
        for _ in range(_count(reader)):
            _skip_any(reader, max_nesting)
    elif kind == 9:  # subdocument: guid, options
        reader.varbytes()
        _skip_any(reader, max_nesting)
    else:
        raise ProtocolError(reader.pos, f"unknown content type {kind}")


def _skip_any(reader: Reader, max_nesting: int) -> None:
    """lib0 `readAny`, iteratively: one frame per open container holds how many values are
    left in it and whether each is an object member (preceded by its key)."""
    stack = [[1, 0]]
    while stack:
        frame = stack[-1]
        if frame[0] == 0:
            stack.pop()
            continue
        frame[0] -= 1
        if frame[1]:
            reader.varbytes()  # the member's key
        tag = _byte(reader)
        if tag in (127, 126, 121, 120):  # undefined, null, false, true
            continue
        if tag == 125:  # signed varint: same continuation bit as varuint
            reader.varuint()
        elif tag == 124:
            _skip(reader, 4)
        elif tag in (123, 122):
            _skip(reader, 8)
        elif tag in (119, 116):  # string, bytes
            reader.varbytes()
        elif tag in (118, 117):  # object, array
            count = _count(reader)
            if len(stack) >= max_nesting:
                raise ProtocolError(reader.pos, f"value nested deeper than {max_nesting}")
            stack.append([count, int(tag == 118)])
        else:
            raise ProtocolError(reader.pos - 1, f"unknown value tag {tag}")
