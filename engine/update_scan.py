"""A bounded walk over a Yjs update (v1) that reads its structure without building it.

It yields the client ids that authored structs (the audit trail records them) and rejects
updates nested deeper than a limit before pycrdt sees them, so a 200,000-level nested
value cannot exhaust a stack anywhere. `iter_structs` reads the same layout but keeps each
struct's ids and parent, which the JSON view needs to tell a root's type. Layout as in
Yjs `UpdateDecoderV1` / `readClientsStructRefs`, and lib0 `readAny` for embedded values.
What typists send is read first by a cheaper path (`engine/typing_scan.py`) that leaves
everything else, and every error, to this walk.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from engine.errors import ProtocolError
from engine.protocol import Reader
from engine.typing_scan import scan_typing
from engine.update_shape import BITS5 as _BITS5
from engine.update_shape import HAS_ORIGIN as _HAS_ORIGIN
from engine.update_shape import HAS_ORIGINS as _HAS_ORIGINS
from engine.update_shape import HAS_PARENT_SUB as _HAS_PARENT_SUB
from engine.update_shape import HAS_RIGHT_ORIGIN as _HAS_RIGHT_ORIGIN
from engine.update_shape import NO_ROOTS, TEXT_KINDS, RootRefs, utf16_length
from engine.update_shape import UpdateShape as UpdateShape

MAX_NESTING = 256
_KNOWN_CLIENTS = 8  # client ids remembered per walk for `_client`

_SKIP = 10
_FLAT_VALUE_TAGS = (119, 116)  # lib0 any: string, bytes (a length, then the bytes)
_INTEGER_TAG = 125  # lib0 any: a signed varint
_CONSTANT_TAGS = (127, 126, 121, 120)  # lib0 any: undefined, null, false, true
_TYPE_REFS_WITH_KEY = (3, 5)  # YXmlElement, YXmlHook carry a node name


def scan_update(update: bytes, *, max_nesting: int = MAX_NESTING) -> UpdateShape:
    """Walk every struct and the delete set of `update`.

    Raises:
        ProtocolError: the update is malformed or nested deeper than `max_nesting`.
    """
    return scan_typing(update) or _scan_any(update, max_nesting)


def _scan_any(update: bytes, max_nesting: int) -> UpdateShape:
    """The general walk: every kind of struct, merged updates with holes, nesting."""
    reader = Reader(update)
    ranges: dict[int, tuple[int, int]] = {}
    deps: dict[int, int] = {}
    holes: dict[int, tuple[tuple[int, int], ...]] = {}
    parents = _Parents()
    for _ in range(read_count(reader)):
        structs = reader.varuint()
        client = reader.varuint()
        clock = start = reader.varuint()
        for _ in range(min(structs, len(update))):
            info = reader.buf[reader.pos] if reader.pos < len(update) else 0
            length = _skip_struct(reader, max_nesting, deps, parents)
            if info & _BITS5 == _SKIP:
                holes[client] = (*holes.get(client, ()), (clock, clock + length))
            elif info & _HAS_ORIGINS and info & _BITS5 in TEXT_KINDS:
                parents.unplaced_text(client, clock + length)
            clock += length
        if holes.get(client) and holes[client][-1][1] == clock:  # a trailing hole
            clock = holes[client][-1][0]
            holes[client] = holes[client][:-1]
        ranges[client] = (start, clock)
    deleted: dict[int, int] = {}
    for _ in range(read_count(reader)):  # delete set: client, n x (clock, len)
        client = reader.varuint()
        for _ in range(read_count(reader)):
            end = reader.varuint() + reader.varuint()
            if end > deleted.get(client, 0):
                deleted[client] = end
    reader.expect_end()
    holes = {client: found for client, found in holes.items() if found}
    return UpdateShape(ranges, deps, deleted, bool(holes), holes, parents.refs())


class _Parents:
    """What `_scan_any` gathers for `UpdateShape.refs`: the root names structs give as
    their parent, whether every name and key is UTF-8 (the walks that decode them,
    `iter_structs`, reject one that is not), and where strings placed by origins end."""

    __slots__ = ("named", "unplaced", "odd")

    def __init__(self) -> None:
        self.named: set[bytes] = set()
        self.unplaced: dict[int, int] = {}
        self.odd = False  # a name or key that is not UTF-8

    def key(self, raw: bytes) -> None:
        if not raw.isascii():
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                self.odd = True

    def unplaced_text(self, client: int, end: int) -> None:
        if end > self.unplaced.get(client, 0):
            self.unplaced[client] = end

    def refs(self) -> RootRefs | None:
        try:
            named = frozenset(raw.decode("utf-8") for raw in self.named) if self.named else None
        except UnicodeDecodeError:
            return None
        return None if self.odd else RootRefs(named or NO_ROOTS, self.unplaced)


DeleteRange = tuple[int, int, int]  # client, clock, length


def read_delete_set(
    update: bytes, *, max_nesting: int = MAX_NESTING
) -> tuple[int, list[DeleteRange]]:
    """Where the delete set of `update` starts (so `update[:at] + b"\\x00"` is its structs
    alone) and its ranges.

    Raises:
        ProtocolError: the update is malformed or nested deeper than `max_nesting`.
    """
    reader = Reader(update)
    deps: dict[int, int] = {}
    for _ in range(read_count(reader)):
        structs = reader.varuint()
        reader.varuint()  # client
        reader.varuint()  # first clock
        for _ in range(min(structs, len(update))):
            _skip_struct(reader, max_nesting, deps)
    at = reader.pos
    ranges: list[DeleteRange] = []
    for _ in range(read_count(reader)):
        client = reader.varuint()
        for _ in range(read_count(reader)):
            clock = reader.varuint()
            ranges.append((client, clock, reader.varuint()))
    reader.expect_end()
    return at, ranges


class StructHead(NamedTuple):
    """One struct of an update without its content: where it sits and what kind it is.

    Attributes:
        kind: content ref (0 GC, 1 deleted, 4 string, 6 format, 7 type, 10 Skip, ...).
        parent: root name or parent item id; None when Yjs derives it from an origin.
        type_ref: for type content, the Yjs type ref (0 array ... 6 xml text).
    """

    client: int
    clock: int
    length: int
    kind: int
    origin: tuple[int, int] | None = None
    right_origin: tuple[int, int] | None = None
    parent: str | tuple[int, int] | None = None
    parent_sub: str | None = None
    type_ref: int | None = None


def iter_structs(update: bytes, *, max_nesting: int = MAX_NESTING) -> Iterator[StructHead]:
    """Yield the head of every struct in `update`, in encoding order (the delete set is
    not read). Used to tell what kind of type each root is, which updates do not say.

    Raises:
        ProtocolError: the update is malformed or nested deeper than `max_nesting`.
    """
    reader = Reader(update)
    known: list[tuple[bytes, int]] = []
    for _ in range(read_count(reader)):
        structs = reader.varuint()
        client = reader.varuint()
        clock = reader.varuint()
        for _ in range(min(structs, len(update))):
            head = _read_head(reader, client, clock, max_nesting, known)
            clock += head.length
            yield head


def _read_head(
    reader: Reader, client: int, clock: int, max_nesting: int, known: list[tuple[bytes, int]]
) -> StructHead:
    """Read one struct as `_skip_struct` does, keeping ids, parent and type ref."""
    info = read_byte(reader)
    kind = info & _BITS5
    varuint = reader.varuint  # bound once: a big room has hundreds of thousands
    if kind in (0, 10):
        return StructHead(client, clock, varuint(), kind)
    origin = (_client(reader, known), varuint()) if info & _HAS_ORIGIN else None
    right = (_client(reader, known), varuint()) if info & _HAS_RIGHT_ORIGIN else None
    parent: str | tuple[int, int] | None = None
    sub = None
    if origin is None and right is None:
        parent = reader.varstring() if varuint() == 1 else (_client(reader, known), varuint())
        if info & _HAS_PARENT_SUB:
            sub = reader.varstring()
    type_ref = None
    if kind == 7:
        at = reader.pos
        type_ref = reader.varuint()
        reader.pos = at
    length = skip_content(reader, kind, max_nesting)
    return StructHead(client, clock, length, kind, origin, right, parent, sub, type_ref)


def _client(reader: Reader, known: list[tuple[bytes, int]]) -> int:
    """A client id: most are one of the few the update names again and again, matched
    whole (a varuint's bytes are prefix-free, so a match is the whole varuint)."""
    buf, pos = reader.buf, reader.pos
    for encoded, client in known:
        if buf.startswith(encoded, pos):
            reader.pos = pos + len(encoded)
            return client
    client = reader.varuint()
    if len(known) < _KNOWN_CLIENTS:
        known.append((bytes(buf[pos : reader.pos]), client))
    return client


def read_count(reader: Reader) -> int:
    at = reader.pos
    count = reader.varuint()
    if count > len(reader.buf):
        raise ProtocolError(at, f"count {count} is larger than the update")
    return count


def read_byte(reader: Reader) -> int:
    if reader.pos >= len(reader.buf):
        raise ProtocolError(reader.pos, "update is truncated")
    value = reader.buf[reader.pos]
    reader.pos += 1
    return value


def _skip(reader: Reader, size: int) -> None:
    if reader.pos + size > len(reader.buf):
        raise ProtocolError(reader.pos, "update is truncated")
    reader.pos += size


def _dep(reader: Reader, deps: dict[int, int]) -> None:
    client = reader.varuint()
    clock = reader.varuint()
    if clock > deps.get(client, -1):
        deps[client] = clock


def _skip_struct(
    reader: Reader, max_nesting: int, deps: dict[int, int], parents: _Parents | None = None
) -> int:
    """Skip one struct; returns its length in clock ticks. `parents` gathers the root
    names and keys it gives."""
    info = read_byte(reader)
    kind = info & _BITS5
    if kind in (0, 10):  # GC or Skip: a length
        return reader.varuint()
    if info & _HAS_ORIGIN:
        _dep(reader, deps)
    if info & _HAS_RIGHT_ORIGIN:
        _dep(reader, deps)
    if not info & _HAS_ORIGINS:
        if reader.varuint() == 1:
            name = reader.varbytes()  # root type name
            if parents is not None:
                parents.named.add(name)
        else:
            _dep(reader, deps)  # parent item id
        if info & _HAS_PARENT_SUB:
            key = reader.varbytes()
            if parents is not None:
                parents.key(key)
    return skip_content(reader, kind, max_nesting)


def skip_content(reader: Reader, kind: int, max_nesting: int) -> int:
    """Skip an item's content; returns its length (UTF-16 units for strings, as Yjs)."""
    if kind == 1:  # deleted: length
        return reader.varuint()
    if kind == 2:  # JSON: n strings
        count = read_count(reader)
        for _ in range(count):
            reader.varbytes()
        return count
    if kind == 4:  # string
        return utf16_length(reader.varbytes())
    if kind in (3, 5):  # binary, embed
        reader.varbytes()
        return 1
    if kind == 6:  # format: key, JSON value
        reader.varbytes()
        reader.varbytes()
        return 1
    if kind == 7:  # type
        if reader.varuint() in _TYPE_REFS_WITH_KEY:
            reader.varbytes()
        return 1
    if kind == 8:  # any: n values
        count = read_count(reader)
        skip_values(reader, count, max_nesting)
        return count
    if kind == 9:  # subdocument: guid, options
        reader.varbytes()
        _skip_any(reader, max_nesting)
        return 1
    raise ProtocolError(reader.pos, f"unknown content type {kind}")


def skip_values(reader: Reader, count: int, max_nesting: int) -> None:
    """`count` lib0 values. Strings and byte arrays, what array items and map values
    mostly are, are skipped inline: a big room's snapshot holds hundreds of thousands,
    and the general walk cost several times as much per value."""
    buf = reader.buf
    end = len(buf)
    for _ in range(count):
        pos = reader.pos
        tag = buf[pos] if pos < end else -1
        if tag in _FLAT_VALUE_TAGS:
            reader.pos = pos + 1
            length = reader.varuint()
            if reader.pos + length > end:
                raise ProtocolError(pos, "value runs past the end of the update")
            reader.pos += length
        elif tag == _INTEGER_TAG:  # a number: a varint, read as a varuint (same bits)
            reader.pos = pos + 1
            reader.varuint()
        elif tag in _CONSTANT_TAGS:
            reader.pos = pos + 1
        else:
            _skip_any(reader, max_nesting)


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
        tag = read_byte(reader)
        if tag in _CONSTANT_TAGS:
            continue
        if tag == _INTEGER_TAG:  # signed varint: same continuation bit as varuint
            reader.varuint()
        elif tag == 124:
            _skip(reader, 4)
        elif tag in (123, 122):
            _skip(reader, 8)
        elif tag in (119, 116):  # string, bytes
            reader.varbytes()
        elif tag in (118, 117):  # object, array
            count = read_count(reader)
            if len(stack) >= max_nesting:
                raise ProtocolError(reader.pos, f"value nested deeper than {max_nesting}")
            stack.append([count, int(tag == 118)])
        else:
            raise ProtocolError(reader.pos - 1, f"unknown value tag {tag}")
