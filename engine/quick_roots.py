"""Each root's type from the structs that name their root, when those alone decide it.

A root's type is the strongest evidence among the structs placed in it (xml, then text,
then map, then array; `engine.jsonview.root_types`). A struct that names a root as its
parent is placed there whatever its neighbours are, and one that carries origins lands
in the root its chain of neighbours ends in, which is one such struct's root, or none.
So when, for every class of content found in structs with origins, every root named
already has evidence at least as strong, placing those structs cannot change any root's
type, and the named structs give the answer exactly: without keeping or following
anything per struct. A struct with origins adds "map" only when its chain ends in a
keyed struct, which gave that root "map" already; deleted content adds nothing.

That is the usual case for a big room: an array of maps whose first element is still
there, a map, a text whose first character is. Each struct is matched whole by one
regular expression (a big room's state holds hundreds of thousands); any other shape,
and every malformed byte, goes to `read_struct` with `Reader`'s bounds and errors.
"""

from __future__ import annotations

import functools
import re

from engine.errors import ProtocolError
from engine.protocol import Reader
from engine.struct_read import (
    ARRAY,
    DELETED,
    ONE_VALUE,
    SHORT_BYTES,
    TEXT,
    VARUINT,
    XML,
    XML_REFS,
    read_struct,
)
from engine.update_scan import MAX_NESTING, read_count

_PRECEDENCE = ("xml", "text", "map", "array")  # text with attributes also has keyed items
_KINDS = {XML: "xml", TEXT: "text", ARRAY: "array"}
_STRENGTH = {kind: len(_PRECEDENCE) - at for at, kind in enumerate(_PRECEDENCE)}


def _one_of(*values: int) -> bytes:
    return b"[" + b"".join(re.escape(bytes([value])) for value in values) + b"]"


def _infos(kind: int, flags: tuple[int, ...]) -> bytes:
    """Info bytes of content `kind` with any of `flags` (origins), the key bit either way
    (a struct with origins writes no key)."""
    return _one_of(*(kind | flag | key for flag in flags for key in (0, 0x20)))


_ORIGINS = (0x80, 0x40, 0xC0)  # left, right, both
_AFTER_ORIGINS = (
    (  # left and right origins as the info byte says: client, clock each
        rb"(?:[\x80-\xbf]" + VARUINT * 2 + rb"|[\x40-\x7f]" + VARUINT * 2 + rb"|[\xc0-\xff]"
    )
    + VARUINT * 4
    + b")"
)
_TYPE_REF = rb"(?:[\x00\x01\x02\x04\x06]|[\x03\x05]" + SHORT_BYTES + b")"
_CONTENTS = {  # kind -> its content, for the contents read here
    8: ONE_VALUE,
    7: _TYPE_REF,
    1: VARUINT,  # deleted: a length
    4: SHORT_BYTES,  # a string
}


def _after_origins(contents: dict[int, bytes]) -> bytes:
    return b"|".join(
        b"(?=" + _infos(kind, _ORIGINS) + b")" + _AFTER_ORIGINS + content
        for kind, content in contents.items()
    )


def _nested() -> bytes:
    """A struct naming a nested type's item as its parent (0, client, clock), with its
    key or not; or a GC or Skip struct (a length). Neither is in any root."""
    shapes = [rb"[\x00\x0a]" + VARUINT]
    for kind, content in _CONTENTS.items():
        shapes.append(re.escape(bytes([kind])) + rb"\x00" + VARUINT * 2 + content)
        shapes.append(
            re.escape(bytes([kind | 0x20])) + rb"\x00" + VARUINT * 2 + SHORT_BYTES + content
        )
    return b"|".join(shapes)


def _named_root() -> bytes:
    """A struct naming a root (1, then the name), with its key or not; the name, info
    byte and type ref are captured."""
    shapes = []
    for kind, content in _CONTENTS.items():
        body = b"(?P<ref>" + content + b")" if kind == 7 else content
        plain, keyed = re.escape(bytes([kind])), re.escape(bytes([kind | 0x20]))
        shapes.append(
            b"(?:"
            + keyed
            + rb"\x01"
            + SHORT_BYTES * 2
            + b"|"
            + plain
            + rb"\x01"
            + SHORT_BYTES
            + b")"
            + body
        )
    head = rb"(?=(?P<info>[\x00-\x3f])\x01(?P<name>" + SHORT_BYTES + b"))"
    return head + b"(?:" + b"|".join(shapes) + b")"


@functools.cache
def _usual() -> re.Pattern[bytes]:
    """The pattern of the usual structs, compiled on first use: compiling takes about
    0.15 s, which every process importing the server would otherwise pay at start."""
    return re.compile(
        b"(?P<nested>"
        + _nested()
        + b")|(?P<array>"
        + _after_origins({8: ONE_VALUE, 7: rb"[\x00\x01\x02\x04]"})
        + b")|(?P<deleted>"
        + _after_origins({1: VARUINT})
        + b")|(?P<text>"
        + _after_origins({4: SHORT_BYTES})
        + b")|(?P<xml>"
        + _after_origins({7: rb"(?:\x06|[\x03\x05]" + SHORT_BYTES + b")"})
        + b")|(?P<root>"
        + _named_root()
        + b")",
        re.DOTALL,
    )


_AFTER_CLASS = {"array": ARRAY, "text": TEXT, "xml": XML}


def quick_root_types(update: bytes, *, max_nesting: int = MAX_NESTING) -> dict[str, str] | None:
    """Each root's type as `root_types` tells it, when the structs that name a root
    decide it (see the module); None when structs with origins may change it.

    Raises:
        ProtocolError: the update is malformed or nested deeper than `max_nesting`.
    """
    evidence: dict[bytes, set[str]] = {}  # per root named (its name's bytes): its kinds
    after: set[int] = set()  # classes of content found in structs with origins
    reader = Reader(update)
    match = _usual().match
    for _ in range(read_count(reader)):
        structs = reader.varuint()
        reader.varuint()  # client
        reader.varuint()  # first clock
        pos = reader.pos
        for _ in range(min(structs, len(update))):
            found = match(update, pos)
            if found is None:
                reader.pos = pos
                _read_any(reader, max_nesting, evidence, after)
                pos = reader.pos
                continue
            pos = found.end()
            group = found.lastgroup
            if group == "nested" or group == "deleted":
                continue
            if group == "root":
                _named(found, evidence)
            else:
                after.add(_AFTER_CLASS[group or ""])
        reader.pos = pos
    return _decided(evidence, after)


def _named(found: re.Match[bytes], evidence: dict[bytes, set[str]]) -> None:
    """Record a struct naming a root, matched by `_usual()`."""
    info = found.group("info")[0]
    seen = evidence.setdefault(found.group("name")[1:], set())
    kind = info & 0x1F
    ref = found.group("ref")
    if info & 0x20:
        seen.add("map")
    elif kind == 7 and ref is not None:
        seen.add("xml" if ref[0] in XML_REFS else "array")
    elif kind in (4, 8):
        seen.add("text" if kind == 4 else "array")


def _read_any(
    reader: Reader, max_nesting: int, evidence: dict[bytes, set[str]], after: set[int]
) -> None:
    """Read and record a struct `_usual()` does not match."""
    facts = read_struct(reader, max_nesting)
    if facts.left is not None or facts.right is not None:
        if facts.evidence != DELETED:
            after.add(facts.evidence)
    elif facts.root is not None:
        seen = evidence.setdefault(facts.root.encode(), set())
        if facts.keyed:
            seen.add("map")
        elif facts.evidence in _KINDS:
            seen.add(_KINDS[facts.evidence])


def _decided(evidence: dict[bytes, set[str]], after: set[int]) -> dict[str, str] | None:
    kinds: dict[str, str] = {}
    for raw, seen in evidence.items():
        try:
            name = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError(0, "a root name is not valid UTF-8") from exc
        strongest = next((kind for kind in _PRECEDENCE if kind in seen), None)
        for found in after:
            if strongest is None or _STRENGTH[strongest] < _STRENGTH[_KINDS[found]]:
                return None  # a struct with origins may add stronger evidence here
        if strongest is not None:
            kinds[name] = strongest
    return kinds
