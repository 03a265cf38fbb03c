"""Which item holds each entry of a root map: the id (client, clock) of a key's current
value, so a rule by client id can name who wrote it (engine/rules/authorship.py).

pycrdt gives no item id for a map value, but the room's encoded state does: a key's value
is the one struct, not deleted, whose parent is the root and whose parentSub is the key.
A struct that has an origin does not carry its parent; it sits where its origin (or right
origin) sits, so the walk follows origins. That walk reads the whole state, so its result
is kept per key and only a key a transaction set or deleted is brought up to date: from
the writer's own update when it names the new value plainly (its struct sets the key, or
follows the key's current value), and likewise from the server's undo of a refused part;
else the key is marked stale and the state is read again before the next writer's update
is applied. Allowed and refused edits therefore read only their own update (and undo); a
full read follows an update from another process, a stored one, a server-side edit or a
restore that changed a key.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from typing import Any

from pycrdt import Doc

from engine.errors import ProtocolError
from engine.update_scan import DeleteRange, StructHead, iter_structs, read_delete_set

ItemId = tuple[int, int]
Placement = tuple[str | ItemId | None, str | None]  # parent, parentSub


class RootMapEntries:
    """The item of every current entry of the root map `root` of one room."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.items: dict[str, ItemId] = {}
        self.keys_of: dict[ItemId, str] = {}
        self.stale: set[str] | None = None  # None: nothing is known yet
        self.update: bytes | None = None  # the writer's update being applied
        self.replaced: dict[ItemId, str] = {}  # values this update replaced (an undo's origins)

    def before_apply(self, doc: Doc[Any], update: bytes) -> None:
        """A writer's `update` is about to be applied: know every key's item now (the
        judging happens after the apply, when the old items are gone)."""
        if self.stale is None or self.stale:
            self._know(current_entries(bytes(doc.get_update()), self.root))
        self.update = update
        self.replaced = {}

    def item(self, key: str) -> ItemId | None:
        """The item of `key`'s value before the update being applied."""
        return self.items.get(key)

    def changed(self, keys: Iterable[str], present: set[str]) -> None:
        """After a transaction (its events judged): `keys` were set or deleted, `present`
        of them hold a value now."""
        keys = set(keys)
        if not keys or self.stale is None:
            return
        found = self._set_by_update(keys & present) if self.update is not None else {}
        for key in keys:
            old = self.items.pop(key, None)
            if old is not None:
                self.replaced[old] = self.keys_of.pop(old, key)
            if key in found:
                self.items[key] = found[key]
                self.keys_of[found[key]] = key
            elif key in present:
                self.stale.add(key)

    def done(self) -> None:
        self.update = None

    def settle(self, undo: bytes, present: set[str]) -> None:
        """After the undo of a refused part (the server's own update, `undo`): the keys it
        put back are read from it, as a writer's are, not from the whole state (so a flood
        of refused edits does not make every next edit read the room)."""
        if not self.stale:
            return
        self.update = undo
        found = self._set_by_update(self.stale & present)
        self.update = None
        for key, item in found.items():
            self.items[key] = item
            self.keys_of[item] = key
            self.stale.discard(key)

    def _know(self, items: dict[str, ItemId]) -> None:
        self.items = items
        self.keys_of = {item: key for key, item in items.items()}
        self.stale = set()

    def _set_by_update(self, keys: set[str]) -> dict[str, ItemId]:
        """The new items of `keys` when the writer's update names exactly one live struct
        for each (a key it names otherwise is left out: it is read from the state)."""
        assert self.update is not None
        known = {**self.replaced, **self.keys_of}
        candidates: dict[str, list[ItemId]] = {}
        try:
            for head in iter_structs(self.update):
                key = self._key_of(head, known)
                if key is not None:
                    known[(head.client, head.clock)] = key
                    if key in keys:
                        candidates.setdefault(key, []).append((head.client, head.clock))
            if any(len(found) > 1 for found in candidates.values()):  # set twice: which lives
                dead = _Deleted(read_delete_set(self.update)[1])
                for key, found in candidates.items():
                    candidates[key] = [item for item in found if not dead.holds(*item)]
        except ProtocolError:
            return {}
        return {key: found[0] for key, found in candidates.items() if len(found) == 1}

    def _key_of(self, head: StructHead, known: dict[ItemId, str]) -> str | None:
        if head.parent == self.root:
            return head.parent_sub
        if head.parent is not None:
            return None
        for neighbour in (head.origin, head.right_origin):
            if neighbour is not None and neighbour in known:
                return known[neighbour]
        return None


def current_entries(state: bytes, root: str) -> dict[str, ItemId]:
    """Every live entry of the root map `root` in an encoded state: key -> item id."""
    heads = [head for head in iter_structs(state) if head.kind not in (0, 10)]
    _, deleted = read_delete_set(state)
    placed = Placements(heads)
    dead = _Deleted(deleted)
    found: dict[str, ItemId] = {}
    for head in heads:
        parent, sub = placed.of(head)
        if parent == root and sub is not None and not dead.holds(head.client, head.clock):
            found[sub] = (head.client, head.clock)
    return found


class Placements:
    """Where each struct sits (parent, parentSub), following origins for those that do
    not say (iteratively: a key set many times is a long chain)."""

    def __init__(self, heads: list[StructHead]) -> None:
        self.starts: dict[int, list[int]] = {}
        self.heads: dict[int, list[StructHead]] = {}
        for head in sorted(heads, key=lambda found: (found.client, found.clock)):
            self.starts.setdefault(head.client, []).append(head.clock)
            self.heads.setdefault(head.client, []).append(head)
        self.known: dict[ItemId, Placement] = {}

    def of(self, head: StructHead) -> Placement:
        chain: list[StructHead] = []
        current: StructHead | None = head
        placement: Placement = (None, None)
        seen: set[ItemId] = set()
        while current is not None:
            at = (current.client, current.clock)
            if at in self.known:
                placement = self.known[at]
                break
            if at in seen:  # an integrated state has no loops; never spin on one
                break
            seen.add(at)
            if current.parent is not None:
                placement = (current.parent, current.parent_sub)
                chain.append(current)
                break
            chain.append(current)
            current = self._containing(current.origin) or self._containing(current.right_origin)
        for step in chain:
            self.known[(step.client, step.clock)] = placement
        return placement

    def _containing(self, item: ItemId | None) -> StructHead | None:
        if item is None or item[0] not in self.starts:
            return None
        client, clock = item
        at = bisect.bisect_right(self.starts[client], clock) - 1
        if at < 0:
            return None
        head = self.heads[client][at]
        return head if clock < head.clock + head.length else None


class _Deleted:
    """A delete set, asked whether it holds one clock."""

    def __init__(self, ranges: Iterable[DeleteRange]) -> None:
        self.ranges: dict[int, list[tuple[int, int]]] = {}
        for client, clock, length in ranges:
            bisect.insort(self.ranges.setdefault(client, []), (clock, clock + length))

    def holds(self, client: int, clock: int) -> bool:
        found = self.ranges.get(client)
        if not found:
            return False
        at = bisect.bisect_right(found, (clock, float("inf"))) - 1
        return at >= 0 and found[at][0] <= clock < found[at][1]
