"""What a Yjs update (v1) contains, as `engine.update_scan` reads it without building it,
and the bits of a struct's info byte both of its readers need."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

BITS5 = 0x1F  # the content kind
HAS_ORIGIN = 0x80
HAS_RIGHT_ORIGIN = 0x40
HAS_PARENT_SUB = 0x20
HAS_ORIGINS = HAS_ORIGIN | HAS_RIGHT_ORIGIN
TEXT_KINDS = (4, 5, 6)  # string, embed, format: content only a text holds


class RootRefs(NamedTuple):
    """What an update's structs say about the roots they sit in: what the rules' `type`
    check (engine/rules/types.py) needs, gathered by the scan every update already gets,
    so that check does not walk the update a second time.

    Attributes:
        named: the root names structs give as their parent (a struct without origins
            names its parent: a root by name, or an item).
        unplaced_text: per client, the end clock of its last string, embed or format
            that gives only origins (Yjs derives its parent from a neighbour).
    """

    named: frozenset[str]
    unplaced_text: dict[int, int]


NO_ROOTS: frozenset[str] = frozenset()


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
        refs: the roots the structs name (None: not gathered, or a root name or key
            that is not UTF-8, which the walks that decode them reject).
    """

    ranges: dict[int, tuple[int, int]]
    deps: dict[int, int]
    deleted: dict[int, int]
    gaps: bool = False
    holes: dict[int, tuple[tuple[int, int], ...]] = field(default_factory=dict)
    refs: RootRefs | None = None

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
        applying it leaves nothing pending. `needs` without building it: every update a
        writer sends in a room with rules is asked this twice (before and while it is
        applied)."""
        have = clocks.get
        ranges, all_holes = self.ranges, self.holes
        for client, (start, _end) in ranges.items():
            holes = all_holes.get(client)
            if have(client, 0) < (holes[-1][1] if holes else start):
                return False
        for client, clock in self.deps.items():
            own = ranges.get(client)
            if not (own and clock < own[1]) and have(client, 0) <= clock:
                return False
        for client, end in self.deleted.items():
            own = ranges.get(client)
            if not (own and end <= own[1]) and have(client, 0) < end:
                return False
        return True

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


def utf16_length(raw: bytes) -> int:
    """A Yjs string's length: UTF-16 units of its UTF-8 bytes."""
    if raw.isascii():
        return len(raw)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        # Yjs writes lone surrogates of split emoji as replacement bytes; count as is.
        text = raw.decode("utf-8", "replace")
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)
