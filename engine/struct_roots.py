"""Which root each struct of a Yjs update (v1) sits in, in one lean pass.

The JSON view and a restore need each root's type, which an update never states: it is
told by the structs stored under the root (`engine.jsonview.root_types`). A big room's
state holds hundreds of thousands of structs, nearly all of them entries of nested maps,
so this reads the layout `engine.update_scan.iter_structs` reads, with the same bounds,
but keeps no object per struct: a few flat lists, and the origins of only the structs
that carry them. The two shapes nearly every struct of a big room has (an entry of a
nested type, an item after its left origin) and their usual contents are read inline;
every other shape, and every malformed byte, goes to the general reader
(`_read_struct`, on `Reader`, with its bounds and errors).

A struct's placement is as in Yjs `Item.getMissing`: an item with no origins names its
parent (a root name, or a nested type's item id); any other inherits its left (else
right) neighbour's. An item next to a collected (GC) struct is collected too, and an
origin cycle, which only a crafted update holds, places nothing.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field

from engine.protocol import Reader
from engine.struct_read import (
    ARRAY,
    DELETED,
    GC,
    NAMED_REFS,
    VARUINT,
    XML,
    XML_REFS,
    Origin,
    read_struct,
)
from engine.update_scan import MAX_NESTING, read_count
from engine.update_shape import HAS_ORIGIN, HAS_PARENT_SUB

# A struct's placement: its root's index times two, plus one when keyed; or one of these.
NOWHERE = -1  # nested in a type, collected, or not placeable
_PENDING = -2  # carries origins: placed from its neighbour's after the read
_VISITING = -3  # on the chain being resolved (met again: a cycle)

_match_varuint = re.compile(VARUINT).match
_match_item_parent = re.compile(rb"\x00" + VARUINT * 2).match  # 0, then client, clock
_match_origin = re.compile(b"(" + VARUINT + b")(" + VARUINT + b")").match
_STRING_TAGS = (119, 116)  # lib0 any: string, bytes (a length, then the bytes)
_INTEGER_TAG = 125  # lib0 any: a signed varint
_CONSTANT_TAGS = (127, 126, 121, 120)  # lib0 any: undefined, null, false, true
_FIXED_TAGS = {124: 4, 123: 8, 122: 8}  # lib0 any: float32, float64, bigint (their bytes)


@dataclass(slots=True)
class Placed:
    """Every struct of an update in encoding order: the evidence its content gives and
    its placement (`roots[placement >> 1]`, keyed when odd; NOWHERE when in no root)."""

    roots: list[str] = field(default_factory=list)
    evidence: list[int] = field(default_factory=list)
    placement: list[int] = field(default_factory=list)


def place_structs(update: bytes, *, max_nesting: int = MAX_NESTING) -> Placed:
    """Read every struct of `update` (not its delete set) and place it.

    Raises:
        ProtocolError: the update is malformed or nested deeper than `max_nesting`.
    """
    walk = _Walk(update, max_nesting)
    walk.read()
    walk.index()
    walk.resolve()
    return walk.placed


class _Walk:
    """The read, then the resolution of origins through a per-client clock index."""

    def __init__(self, update: bytes, max_nesting: int) -> None:
        self.buf = update
        self.reader = Reader(update)
        self.max_nesting = max_nesting
        self.placed = Placed()
        self.root_index: dict[str, int] = {}
        self.firsts: list[int] = []  # each struct's first clock
        self.ends: list[int] = []  # ... and its last clock + 1
        self.blocks: list[tuple[int, int, int]] = []  # client, its structs' indices [a, b)
        self.origins: dict[int, tuple[Origin, Origin]] = {}  # index -> (left, right)
        self.clients: dict[bytes, int] = {}  # client ids by their encoding
        self.starts: dict[int, Sequence[int]] = {}  # per client: its structs' first clocks
        self.where: dict[int, Sequence[int]] = {}  # ... and their indices, in that order

    def read(self) -> None:
        """Read every struct, the usual shapes inline (see the module)."""
        reader = self.reader
        firsts = self.firsts
        for _ in range(read_count(reader)):
            structs = reader.varuint()
            client = reader.varuint()
            clock = reader.varuint()
            first = len(firsts)
            self._read_run(min(structs, len(self.buf)), clock)
            self.blocks.append((client, first, len(firsts)))

    def _read_run(self, structs: int, clock: int) -> None:
        """Read `structs` structs of one client from its first clock. Inline, in one
        loop with locals only, as a big room's state has hundreds of thousands: those
        that name a nested type as their parent or follow a left origin, with one plain
        value, a type or a deleted run. `_read_struct` reads any other, and anything
        malformed, with `Reader`'s bounds and errors (keys are skipped here, not
        decoded: pycrdt refuses a key that is not UTF-8 when the state is loaded)."""
        buf, reader, size = self.buf, self.reader, len(self.buf)
        firsts, ends, origins = self.firsts, self.ends, self.origins
        evidence, placement = self.placed.evidence, self.placed.placement
        client_of = self._client
        pos = reader.pos
        for _ in range(structs):
            firsts.append(clock)
            info = buf[pos] if pos < size else 0
            kind = info & 0x1F
            end = -1
            if kind == 0 or kind == 10:
                pass
            elif info & 0xC0 == 0:  # names its parent: an item id here (nested)
                found = _match_item_parent(buf, pos + 1)
                if found is not None:
                    end = found.end()
                    if info & HAS_PARENT_SUB:  # its key: a short string, or read below
                        key = buf[end] if end < size else 0x80
                        end = end + 1 + key if key < 0x80 and end + 1 + key <= size else -1
                    left = None
            elif info & 0xC0 == HAS_ORIGIN:  # after its left origin only
                found = _match_origin(buf, pos + 1)
                if found is not None:
                    end = found.end()
                    clock_of = found.group(2)
                    left = (
                        client_of(found.group(1)),
                        clock_of[0] if len(clock_of) == 1 else _value(clock_of),
                    )
            if end >= 0:  # the usual contents, inline: one plain value, a type, a run
                first = buf[end] if end < size else 0x80
                length = 1
                code = ARRAY
                if kind == 8 and first == 1 and end + 1 < size:  # any: one value
                    tag = buf[end + 1]
                    end += 2
                    if tag in _STRING_TAGS:
                        short = buf[end] if end < size else 0x80
                        end = end + 1 + short if short < 0x80 else -1
                    elif tag in _FIXED_TAGS:
                        end += _FIXED_TAGS[tag]
                    elif tag == _INTEGER_TAG:
                        found = _match_varuint(buf, end)
                        end = -1 if found is None else found.end()
                    elif tag not in _CONSTANT_TAGS:
                        end = -1
                elif kind == 7 and first < 0x80 and first not in NAMED_REFS:  # a type
                    end += 1
                    if first in XML_REFS:
                        code = XML
                elif kind == 1 and first < 0x80:  # deleted: its length
                    end += 1
                    length = first
                    code = DELETED
                else:
                    end = -1
            if 0 <= end <= size:
                if left is None:
                    placement.append(NOWHERE)
                else:
                    origins[len(placement)] = (left, None)
                    placement.append(_PENDING)
                evidence.append(code)
                pos = end
            else:
                reader.pos = pos
                length = self._read_struct()
                pos = reader.pos
            clock += length
            ends.append(clock)
        reader.pos = pos

    def _client(self, encoded: bytes) -> int:
        client = self.clients.get(encoded)
        if client is None:
            client = self.clients[encoded] = _value(encoded)
        return client

    def _read_struct(self) -> int:
        """Read one struct of any shape (`read_struct`), record its evidence and
        placement; returns its length."""
        facts = read_struct(self.reader, self.max_nesting)
        placed = self.placed
        if facts.left is not None or facts.right is not None:
            self.origins[len(placed.placement)] = (facts.left, facts.right)
            placed.placement.append(_PENDING)
        elif facts.root is not None:
            placed.placement.append(2 * self._root(facts.root) + facts.keyed)
        else:
            placed.placement.append(NOWHERE)
        placed.evidence.append(facts.evidence)
        return facts.length

    def _root(self, name: str) -> int:
        index = self.root_index.get(name)
        if index is None:
            index = self.root_index[name] = len(self.placed.roots)
            self.placed.roots.append(name)
        return index

    def index(self) -> None:
        """Each client's structs by first clock. A v1 update writes a client's structs
        in one run in clock order; a crafted one may repeat a client, whose runs are
        then sorted together (stably, as the first clocks may repeat)."""
        runs: dict[int, list[tuple[int, int]]] = {}
        for client, first, last in self.blocks:
            runs.setdefault(client, []).append((first, last))
        for client, spans in runs.items():
            if len(spans) == 1:
                first, last = spans[0]
                self.starts[client] = self.firsts[first:last]
                self.where[client] = range(first, last)
                continue
            where = [i for first, last in spans for i in range(first, last)]
            where.sort(key=self.firsts.__getitem__)
            self.where[client] = where
            self.starts[client] = [self.firsts[i] for i in where]

    def resolve(self) -> None:
        """Place every struct that carries origins, following chains of them iteratively
        (typing makes them as long as the text)."""
        placement, evidence = self.placed.placement, self.placed.evidence
        for first in self.origins:
            chain: list[int] = []
            at: int | None = first
            while at is not None and placement[at] == _PENDING:
                placement[at] = _VISITING
                chain.append(at)
                left, right = (self._find(ident) for ident in self.origins[at])
                if GC in (evidence[n] for n in (left, right) if n is not None):
                    at = None  # next to collected content: collected too
                    break
                at = left if left is not None else right
            found = NOWHERE if at is None or placement[at] < NOWHERE else placement[at]
            for index in chain:
                placement[index] = found

    def _find(self, ident: Origin) -> int | None:
        """The index of the struct holding item `ident`, if the update has it."""
        if ident is None or ident[0] not in self.starts:
            return None
        client, clock = ident
        k = bisect_right(self.starts[client], clock) - 1
        if k < 0:
            return None
        index = self.where[client][k]
        return index if clock < self.ends[index] else None


def _value(encoded: bytes) -> int:
    """A varuint matched whole by `_VARUINT`."""
    value = 0
    for shift, byte in enumerate(encoded):
        value |= (byte & 0x7F) << (7 * shift)
    return value
