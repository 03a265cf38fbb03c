"""`scan_update` for what typists send all day, a few times cheaper than the general walk
(`engine.update_scan`), which it leaves everything else, and every error, to."""

from __future__ import annotations

import re

from engine.update_shape import (
    BITS5,
    HAS_ORIGIN,
    HAS_ORIGINS,
    HAS_PARENT_SUB,
    HAS_RIGHT_ORIGIN,
    NO_ROOTS,
    RootRefs,
    UpdateShape,
    utf16_length,
)


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
    client, start = _value(fields[0]), _value(fields[1])
    end = start + (len(text) if text.isascii() else utf16_length(text))
    refs = RootRefs(NO_ROOTS, {client: end})  # a string placed by its origins
    return UpdateShape({client: (start, end)}, deps, {}, False, {}, refs)


def scan_typing(update: bytes) -> UpdateShape | None:
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
        named: set[str] = set()
        unplaced: dict[int, int] = {}
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
                if info & BITS5 not in _TYPING_KINDS:
                    return None
                pos = _typing_refs(update, pos, info, deps, named)
                length, pos = _uint(update, pos)
                if info & BITS5 == 4:  # a string of `length` bytes
                    text = bytes(update[pos : pos + length])  # a view's slice: copied
                    pos += length
                    length = len(text) if text.isascii() else utf16_length(text)
                    if info & HAS_ORIGINS and clock + length > unplaced.get(client, 0):
                        unplaced[client] = clock + length  # as the general walk keeps it
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
    refs = RootRefs(frozenset(named) if named else NO_ROOTS, unplaced)
    return UpdateShape(ranges, deps, deleted, False, {}, refs)


def _typing_refs(update: bytes, pos: int, info: int, deps: dict[int, int], named: set[str]) -> int:
    """A struct's origins, or its parent and key, as `_skip_struct` reads them; a root
    named as its parent goes into `named`."""
    refs = 0
    if info & HAS_ORIGIN:
        refs += 1
    if info & HAS_RIGHT_ORIGIN:
        refs += 1
    if not refs:
        kind, pos = _uint(update, pos)
        if kind == 1:  # a root type's name
            name, pos = _string(update, pos)
            named.add(name)
        else:
            refs = 1  # the parent item's id
    for _ in range(refs):
        client, pos = _uint(update, pos)
        clock, pos = _uint(update, pos)
        if clock > deps.get(client, -1):
            deps[client] = clock
    if not info & HAS_ORIGINS and info & HAS_PARENT_SUB:
        _, pos = _string(update, pos)
    return pos


def _string(update: bytes, pos: int) -> tuple[str, int]:
    """A varstring (a root name, a key) and the position after it; `_Unusual` when it
    runs past the end or is not UTF-8 (the general walk then says what it makes of it)."""
    size, pos = _uint(update, pos)
    raw = bytes(update[pos : pos + size])
    if len(raw) != size:
        raise _Unusual
    try:
        return raw.decode("utf-8"), pos + size
    except UnicodeDecodeError:
        raise _Unusual from None


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
