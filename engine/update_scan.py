"""A bounded walk over a Yjs update (v1) that reads its structure without building it.

It yields the client ids that authored structs (the audit trail records them) and rejects
updates nested deeper than a limit before pycrdt sees them, so a 200,000-level nested
value cannot exhaust a stack anywhere. `iter_structs` reads the same layout but keeps each
struct's ids and parent, which the JSON view needs to tell a root's type. Layout as in
Yjs `UpdateDecoderV1` / `readClientsStructRefs`, and lib0 `readAny` for embedded values.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from engine.errors import ProtocolError
from engine.protocol import Reader

MAX_NESTING = 256

_BITS5 = 0x1F
_SKIP = 10
_HAS_ORIGIN = 0x80
_HAS_RIGHT_ORIGIN = 0x40
_HAS_PARENT_SUB = 0x20
_FLAT_VALUE_TAGS = (119, 116)  # lib0 any: string, bytes (a length, then the bytes)
_INTEGER_TAG = 125  # lib0 any: a signed varint
_CONSTANT_TAGS = (127, 126, 121, 120)  # lib0 any: undefined, null, false, true
_TYPE_REFS_WITH_KEY = (3, 5)  # YXmlElement, YXmlHook carry a node name


@dataclass(slots=True)
class UpdateShape:
    """What an update contains, without building it. Read-only by convention: one is
    made for every update a client sends, and a frozen dataclass took 4x as long to make.

    Attributes:
        ranges: per authoring client, the clock range [start, end) of its structs.
        deps: per client, the highest clock the structs refer to (origins, parents).
        deleted: per client, the end of the highest clock range the update deletes.
        gaps: whether a client's range has holes (Skip structs, from merged updates).
        holes: per client with holes, the holes' clock ranges [start, end) in order.
    """

    ranges: dict[int, tuple[int, int]]
    deps: dict[int, int]
    deleted: dict[int, int]
    gaps: bool = False
    holes: dict[int, tuple[tuple[int, int], ...]] = field(default_factory=dict)

    @property
    def deletes(self) -> bool:
        """Whether the update carries a non-empty delete set."""
        return bool(self.deleted)

    @property
    def clients(self) -> tuple[int, ...]:
        return tuple(self.ranges)

    def needs(self) -> dict[int, int]:
        """The state (client -> clock) a document must have reached for all of this
        update to integrate: each client's clocks before its first struct and inside its
        holes, and every struct outside the update that it refers to or deletes."""
        need = {}
        for client, (start, _end) in self.ranges.items():
            holes = self.holes.get(client)
            need[client] = holes[-1][1] if holes else start  # holes come in clock order
        for client, clock in self.deps.items():
            own = self.ranges.get(client)
            if not (own and clock < own[1]):  # below its own end: covered by the above
                need[client] = max(need.get(client, 0), clock + 1)
        for client, end in self.deleted.items():
            own = self.ranges.get(client)
            if not (own and end <= own[1]):
                need[client] = max(need.get(client, 0), end)
        return need

    def integrates_after(self, clocks: Mapping[int, int]) -> bool:
        """True when a document at state `clocks` has everything this update needs, so
        applying it leaves nothing pending."""
        return all(clocks.get(client, 0) >= clock for client, clock in self.needs().items())

    def continues(self, clocks: Mapping[int, int]) -> bool:
        """True when, for some client, the struct a document at `clocks` lacks next is in
        this update (not in one of its holes): applying it may integrate part of it even
        while other parts still wait (its references are not checked)."""
        for client, (start, end) in self.ranges.items():
            have = clocks.get(client, 0)
            if start <= have < end and not any(
                first <= have < last for first, last in self.holes.get(client, ())
            ):
                return True
        return False

    def covered_by(self, clocks: Mapping[int, int]) -> bool:
        """True when a document at state `clocks` holds all of this update's structs and
        every item it deletes (so nothing of it can still be pending)."""
        for client, (_start, end) in self.ranges.items():
            if end > clocks.get(client, 0):
                return False
        return all(end <= clocks.get(client, 0) for client, end in self.deleted.items())


def scan_update(update: bytes, *, max_nesting: int = MAX_NESTING) -> UpdateShape:
    """Walk every struct and the delete set of `update`.

    Raises:
        ProtocolError: the update is malformed or nested deeper than `max_nesting`.
    """
    return _scan_typing(update) or _scan_any(update, max_nesting)


def _scan_any(update: bytes, max_nesting: int) -> UpdateShape:
    """The general walk: every kind of struct, merged updates with holes, nesting."""
    reader = Reader(update)
    ranges: dict[int, tuple[int, int]] = {}
    deps: dict[int, int] = {}
    holes: dict[int, tuple[tuple[int, int], ...]] = {}
    for _ in range(_count(reader)):
        structs = reader.varuint()
        client = reader.varuint()
        clock = start = reader.varuint()
        for _ in range(min(structs, len(update))):
            skip = reader.pos < len(update) and reader.buf[reader.pos] & _BITS5 == _SKIP
            length = _skip_struct(reader, max_nesting, deps)
            if skip:
                holes[client] = (*holes.get(client, ()), (clock, clock + length))
            clock += length
        if holes.get(client) and holes[client][-1][1] == clock:  # a trailing hole
            clock = holes[client][-1][0]
            holes[client] = holes[client][:-1]
        ranges[client] = (start, clock)
    deleted: dict[int, int] = {}
    for _ in range(_count(reader)):  # delete set: client, n x (clock, len)
        client = reader.varuint()
        for _ in range(_count(reader)):
            end = reader.varuint() + reader.varuint()
            if end > deleted.get(client, 0):
                deleted[client] = end
    reader.expect_end()
    holes = {client: found for client, found in holes.items() if found}
    return UpdateShape(ranges, deps, deleted, bool(holes), holes)


class _Unusual(Exception):
    """Raised inside `_scan_typing` for what it leaves to the general walk."""


_TYPING_KINDS = (1, 4)  # a deleted run, a string: what typing into a text sends


_VARUINT = rb"([\x80-\xff]{0,9}[\x00-\x7f])"
_KEYSTROKE = re.compile(
    rb"\x01\x01"
    + _VARUINT * 2  # one client, one struct: client id, clock
    + rb"(?:\xc4"
    + _VARUINT * 4  # a string between its left and right origins,
    + rb"|\x84"
    + _VARUINT * 2  # after its left origin only,
    + rb"|\x44"
    + _VARUINT * 2  # or before its right origin only
    + rb")"
    + _VARUINT
    + rb"(.*)\x00",  # its length and bytes; no deletions
    re.DOTALL,
)
_match_keystroke = _KEYSTROKE.fullmatch
_KEYSTROKE_REFS = (2, 4, 6, 8)  # where each origin's client id is among the groups


def _scan_keystroke(update: bytes) -> UpdateShape | None:
    """`scan_update` of one typed string (what a keystroke sends), matched by one
    regular expression; None for anything else."""
    found = _match_keystroke(update)
    if found is None:
        return None
    fields = found.groups()  # client, clock, 4 x (client, clock) or None, size, text
    text = fields[11]
    if len(text) != _value(fields[10]):
        return None
    deps: dict[int, int] = {}
    for at in _KEYSTROKE_REFS:
        if fields[at] is not None:
            dep, clock = _value(fields[at]), _value(fields[at + 1])
            if clock > deps.get(dep, -1):
                deps[dep] = clock
    start = _value(fields[1])
    length = len(text) if text.isascii() else _utf16_length(text)
    return UpdateShape({_value(fields[0]): (start, start + length)}, deps, {}, False, {})


def _scan_typing(update: bytes) -> UpdateShape | None:
    """`scan_update` of what typists send all day, or None (then the general walk reads,
    and judges, the update). Covers at most one client's structs, each a string or a
    deleted run, and any delete set: no nesting is possible there. One keystroke is one
    regular expression match (`_scan_keystroke`), the rest one loop over local variables:
    the general walk's calls per field cost the server a tenth of its time at many rooms
    of typists. Anything malformed is left to the general walk, which says what is
    wrong; what is read here equals what it would read (the tests compare)."""
    end = len(update)
    try:
        shape = _scan_keystroke(update)
        if shape is not None:
            return shape
        if update[0] > 1:  # more than one client (or a count that is no single byte)
            return None
        pos = 1
        ranges: dict[int, tuple[int, int]] = {}
        deps: dict[int, int] = {}
        if update[0]:
            structs, pos = _uint(update, pos)
            client, pos = _uint(update, pos)
            start, pos = _uint(update, pos)
            clock = start
            if structs > end:
                return None
            for _ in range(structs):
                info = update[pos]
                pos += 1
                if info & _BITS5 not in _TYPING_KINDS:
                    return None
                pos = _typing_refs(update, pos, info, deps)
                length, pos = _uint(update, pos)
                if info & _BITS5 == 4:  # a string of `length` bytes
                    text = bytes(update[pos : pos + length])  # a view's slice: copied
                    pos += length
                    length = len(text) if text.isascii() else _utf16_length(text)
                clock += length
            ranges[client] = (start, clock)
        if update[pos] == 0:  # no deletions
            deleted: dict[int, int] = {}
            pos += 1
        else:
            deleted, pos = _typing_deletes(update, pos)
    except (IndexError, _Unusual):
        return None
    if pos != end:
        return None
    return UpdateShape(ranges, deps, deleted, False, {})


def _typing_refs(update: bytes, pos: int, info: int, deps: dict[int, int]) -> int:
    """A struct's origins, or its parent and key, as `_skip_struct` reads them."""
    refs = 0
    if info & _HAS_ORIGIN:
        refs += 1
    if info & _HAS_RIGHT_ORIGIN:
        refs += 1
    if not refs:
        kind, pos = _uint(update, pos)
        if kind == 1:  # a root type's name
            size, pos = _uint(update, pos)
            pos += size
        else:
            refs = 1  # the parent item's id
    for _ in range(refs):
        client, pos = _uint(update, pos)
        clock, pos = _uint(update, pos)
        if clock > deps.get(client, -1):
            deps[client] = clock
    if not info & (_HAS_ORIGIN | _HAS_RIGHT_ORIGIN) and info & _HAS_PARENT_SUB:
        size, pos = _uint(update, pos)
        pos += size
    return pos


def _typing_deletes(update: bytes, pos: int) -> tuple[dict[int, int], int]:
    """The delete set, as `_scan_any` reads it: per client, the end of its last range."""
    end = len(update)
    deleted: dict[int, int] = {}
    count, pos = _uint(update, pos)
    if count > end:
        raise _Unusual
    for _ in range(count):
        client, pos = _uint(update, pos)
        ranges, pos = _uint(update, pos)
        if ranges > end:
            raise _Unusual
        for _ in range(ranges):
            clock, pos = _uint(update, pos)
            length, pos = _uint(update, pos)
            if clock + length > deleted.get(client, 0):
                deleted[client] = clock + length
    return deleted, pos


_LONG_UINT = re.compile(rb"[\x80-\xff]{1,9}[\x00-\x7f]")
_long_uint_match = _LONG_UINT.match
_LONG_UINTS: dict[bytes, int] = {}  # encoded -> value: client ids, mostly
_LONG_UINTS_KEPT = 4096


def _uint(buf: bytes, pos: int) -> tuple[int, int]:
    """A lib0 varuint at `pos` and the position after it (IndexError past the end,
    `_Unusual` past 64 bits: the general walk then says which).

    Client ids take 7-8 bytes and come up to three times in every typed character, from
    few clients: a long varuint is found by a regular expression and its value looked up
    among those seen recently (a bounded table) before it is decoded byte by byte."""
    byte = buf[pos]
    if byte < 0x80:
        return byte, pos + 1
    found = _long_uint_match(buf, pos)
    if found is None:
        raise _Unusual  # truncated, or longer than any 64-bit value
    return _value(found.group()), found.end()


def _value(encoded: bytes) -> int:
    """The value of one whole encoded varuint (`_Unusual` past 64 bits)."""
    if len(encoded) == 1:
        return encoded[0]
    value = _LONG_UINTS.get(encoded)
    if value is None:
        value = _decode_uint(encoded, 0)
        if len(_LONG_UINTS) >= _LONG_UINTS_KEPT:
            _LONG_UINTS.clear()
        _LONG_UINTS[encoded] = value
    return value


def _decode_uint(buf: bytes, pos: int) -> int:
    """`_uint`'s value byte after byte."""
    byte = buf[pos]
    value = byte & 0x7F
    shift = 7
    while True:
        pos += 1
        byte = buf[pos]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            break
        shift += 7
        if shift >= 64:
            raise _Unusual
    if value >> 64:
        raise _Unusual
    return value


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
    for _ in range(_count(reader)):
        structs = reader.varuint()
        reader.varuint()  # client
        reader.varuint()  # first clock
        for _ in range(min(structs, len(update))):
            _skip_struct(reader, max_nesting, deps)
    at = reader.pos
    ranges: list[DeleteRange] = []
    for _ in range(_count(reader)):
        client = reader.varuint()
        for _ in range(_count(reader)):
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
    for _ in range(_count(reader)):
        structs = reader.varuint()
        client = reader.varuint()
        clock = reader.varuint()
        for _ in range(min(structs, len(update))):
            head = _read_head(reader, client, clock, max_nesting)
            clock += head.length
            yield head


def _read_head(reader: Reader, client: int, clock: int, max_nesting: int) -> StructHead:
    """Read one struct as `_skip_struct` does, keeping ids, parent and type ref."""
    info = _byte(reader)
    kind = info & _BITS5
    varuint = reader.varuint  # bound once: a big room has hundreds of thousands
    if kind in (0, 10):
        return StructHead(client, clock, varuint(), kind)
    origin = (varuint(), varuint()) if info & _HAS_ORIGIN else None
    right = (varuint(), varuint()) if info & _HAS_RIGHT_ORIGIN else None
    parent: str | tuple[int, int] | None = None
    sub = None
    if origin is None and right is None:
        parent = reader.varstring() if varuint() == 1 else (varuint(), varuint())
        if info & _HAS_PARENT_SUB:
            sub = reader.varstring()
    type_ref = None
    if kind == 7:
        at = reader.pos
        type_ref = reader.varuint()
        reader.pos = at
    length = _skip_content(reader, kind, max_nesting)
    return StructHead(client, clock, length, kind, origin, right, parent, sub, type_ref)


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


def _dep(reader: Reader, deps: dict[int, int]) -> None:
    client = reader.varuint()
    clock = reader.varuint()
    if clock > deps.get(client, -1):
        deps[client] = clock


def _skip_struct(reader: Reader, max_nesting: int, deps: dict[int, int]) -> int:
    """Skip one struct; returns its length in clock ticks."""
    info = _byte(reader)
    kind = info & _BITS5
    if kind in (0, 10):  # GC or Skip: a length
        return reader.varuint()
    if info & _HAS_ORIGIN:
        _dep(reader, deps)
    if info & _HAS_RIGHT_ORIGIN:
        _dep(reader, deps)
    if not info & (_HAS_ORIGIN | _HAS_RIGHT_ORIGIN):
        if reader.varuint() == 1:
            reader.varbytes()  # root type name
        else:
            _dep(reader, deps)  # parent item id
        if info & _HAS_PARENT_SUB:
            reader.varbytes()
    return _skip_content(reader, kind, max_nesting)


def _skip_content(reader: Reader, kind: int, max_nesting: int) -> int:
    """Skip an item's content; returns its length (UTF-16 units for strings, as Yjs)."""
    if kind == 1:  # deleted: length
        return reader.varuint()
    if kind == 2:  # JSON: n strings
        count = _count(reader)
        for _ in range(count):
            reader.varbytes()
        return count
    if kind == 4:  # string
        return _utf16_length(reader.varbytes())
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
        count = _count(reader)
        _skip_values(reader, count, max_nesting)
        return count
    if kind == 9:  # subdocument: guid, options
        reader.varbytes()
        _skip_any(reader, max_nesting)
        return 1
    raise ProtocolError(reader.pos, f"unknown content type {kind}")


def _utf16_length(raw: bytes) -> int:
    if raw.isascii():
        return len(raw)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        # Yjs writes lone surrogates of split emoji as replacement bytes; count as is.
        text = raw.decode("utf-8", "replace")
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)


def _skip_values(reader: Reader, count: int, max_nesting: int) -> None:
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
        tag = _byte(reader)
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
            count = _count(reader)
            if len(stack) >= max_nesting:
                raise ProtocolError(reader.pos, f"value nested deeper than {max_nesting}")
            stack.append([count, int(tag == 118)])
        else:
            raise ProtocolError(reader.pos - 1, f"unknown value tag {tag}")
