"""One struct of a Yjs update (v1), read for what it says of the root it sits in.

Shared by the two walks that tell a root's type (`engine.struct_roots`, which places
every struct, and `engine.quick_roots`, which reads only the structs that name their
parent): the general reader every shape and every malformed byte goes to, on `Reader`
with its bounds and errors, and the byte patterns both match the usual shapes with.
The layout is as `engine.update_scan` reads it (Yjs `UpdateDecoderV1`, lib0 `readAny`).
"""

from __future__ import annotations

import re
from typing import NamedTuple

from engine.protocol import Reader
from engine.update_scan import read_byte, skip_content
from engine.update_shape import HAS_ORIGIN, HAS_PARENT_SUB, HAS_RIGHT_ORIGIN

# What a struct's own content says of the root it sits in:
DELETED = 0  # deleted content: nothing, unless it is keyed (a map's deleted entry)
XML = 1
TEXT = 2
ARRAY = 3
GC = 4  # collected: in no root, and nor is an item next to it
SKIP = 5  # a hole in a merged update: in no root
XML_REFS = (3, 5, 6)  # YXmlElement, YXmlHook, YXmlText
NAMED_REFS = (3, 5)  # YXmlElement, YXmlHook carry a node name

Origin = tuple[int, int] | None  # (client, clock) of a neighbour

# Byte patterns, each accepting exactly what `Reader` reads the same way (else no match):
VARUINT = rb"(?:[\x80-\xff]{0,8}[\x00-\x7f]|[\x80-\xff]{9}[\x00\x01])"  # <= 64 bits
SHORT_BYTES = (  # a byte string of up to 63 bytes, its length in one byte
    b"(?:" + b"|".join(re.escape(bytes([n])) + b"[\\x00-\\xff]{%d}" % n for n in range(64)) + b")"
)
ONE_VALUE = (  # lib0 any, count 1: a short string or bytes, an integer, a constant, a float
    rb"\x01(?:[\x77\x74]"
    + SHORT_BYTES
    + rb"|\x7d"
    + VARUINT
    + rb"|[\x7f\x7e\x79\x78]|\x7c[\x00-\xff]{4}|[\x7b\x7a][\x00-\xff]{8})"
)


class StructFacts(NamedTuple):
    """What one struct says of where it sits: its length, its content's evidence, and
    either the root it names (`root`, `keyed`), or its origins (`left`, `right`), or
    neither (nested in a type, collected, or a hole)."""

    length: int
    evidence: int
    root: str | None = None
    keyed: bool = False
    left: Origin = None
    right: Origin = None


def read_struct(reader: Reader, max_nesting: int) -> StructFacts:
    """Read one struct of any shape.

    Raises:
        ProtocolError: it is malformed or nested deeper than `max_nesting`.
    """
    info = read_byte(reader)
    kind = info & 0x1F
    if kind in (0, 10):  # GC or Skip: a length
        return StructFacts(reader.varuint(), GC if kind == 0 else SKIP)
    left = (reader.varuint(), reader.varuint()) if info & HAS_ORIGIN else None
    right = (reader.varuint(), reader.varuint()) if info & HAS_RIGHT_ORIGIN else None
    root = None
    keyed = False
    if left is None and right is None:
        if reader.varuint() == 1:
            root = reader.varstring()
        else:
            reader.varuint()  # a nested type's item id: client, clock
            reader.varuint()
        if info & HAS_PARENT_SUB:
            reader.varstring()
            keyed = True
    ref = None
    if kind == 7:  # a type: its ref, read again by `skip_content`
        at = reader.pos
        ref = reader.varuint()
        reader.pos = at
    length = skip_content(reader, kind, max_nesting)
    return StructFacts(length, evidence_of(kind, ref), root, keyed, left, right)


def evidence_of(kind: int, type_ref: int | None = None) -> int:
    """What content of `kind` (a type's: of `type_ref`) says of the root it sits in."""
    if kind == 7:
        return XML if type_ref in XML_REFS else ARRAY
    if kind in (4, 5, 6):  # string, embed, format
        return TEXT
    if kind == 0:
        return GC
    if kind == 10:
        return SKIP
    return DELETED if kind == 1 else ARRAY
