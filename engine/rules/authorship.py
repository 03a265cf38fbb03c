"""Who wrote an item: the user its client id is bound to (engine/rules/owners.py), or,
for what the server itself wrote, the user a record names.

Every struct a writer's update adds is under a client id bound to that writer (the guard
refuses the rest), so a binding says who inserted each item. The server writes under its
own client id (the live document's, bound to the server so no writer can claim it): undos
of refused edits, `rooms.edit`, restores. Those are attributed to a user by a record per
range of the server's clocks (`authored:CLIENT:CLOCK` -> `END<TAB>USER` in per-room
metadata): an entry an undo re-inserts keeps its original author, a server-side edit is
its named user's.

An item whose author is unknown (its client id was never bound, as for items written
before ids were bound, or it is the server's and no record names anyone) has no author:
rules that need one let only moderators change it. A lost record (a crash between the
commit and its write) therefore never gives anyone more rights, only fewer.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pycrdt import Array, Assoc, Doc, StickyIndex

from engine.errors import ProtocolError
from engine.rules.authors import encode_delete_set, removed_before
from engine.rules.owners import SERVER
from engine.storage import DocStore
from engine.update_scan import DeleteRange
from engine.yjs import decode_state_vector

PREFIX = "authored:"

AuthoredRange = tuple[int, int, int, str]  # client, first clock, end clock, user


@dataclass(slots=True)
class Authorship:
    """One room's authors as this process knows them. `bindings` is the live map of
    client id -> user (the guard's, shared); `ranges`: the server's recorded ranges."""

    bindings: Mapping[int, str] = field(default_factory=dict)
    ranges: dict[int, list[tuple[int, int, str]]] = field(default_factory=dict)

    def add(self, found: Iterable[AuthoredRange]) -> None:
        for client, start, end, user in found:
            bisect.insort(self.ranges.setdefault(client, []), (start, end, user))

    def author(self, client: int, clock: int) -> str | None:
        """The user who wrote item (client, clock); None when unknown (module docstring).
        A record wins over the binding: a writer who bound an id the server also writes
        under (one guessed before the server's first edit in this room) owns only its
        own structs."""
        recorded = self.ranges.get(client)
        if recorded is not None:
            at = bisect.bisect_right(recorded, (clock, float("inf"), "")) - 1
            if at >= 0 and recorded[at][0] <= clock < recorded[at][1]:
                return recorded[at][2]
        owner = self.bindings.get(client)
        return None if owner is None or owner == SERVER else owner

    def split(self, ranges: Iterable[DeleteRange]) -> dict[str | None, list[DeleteRange]]:
        """Ranges grouped by their items' authors (None: unknown), cut where records
        start and end."""
        grouped: dict[str | None, list[DeleteRange]] = {}
        for client, clock, length in ranges:
            for start, end, user in self._pieces(client, clock, clock + length):
                grouped.setdefault(user, []).append((client, start, end - start))
        return grouped

    def _pieces(self, client: int, start: int, end: int) -> list[tuple[int, int, str | None]]:
        bound = self.bindings.get(client)
        fallback = None if bound is None or bound == SERVER else bound
        pieces: list[tuple[int, int, str | None]] = []
        at = start
        for first, last, user in self.ranges.get(client, []):
            if last <= at or first >= end:
                continue
            if first > at:
                pieces.append((at, first, fallback))
            pieces.append((max(first, at), min(last, end), user))
            at = min(last, end)
        if at < end:
            pieces.append((at, end, fallback))
        return pieces


OldAuthors = Callable[[int], str | None]  # an old position of a root array -> its author


def deleted_entry_authors(
    doc: Doc[Any], root: str, update: bytes, clocks: Mapping[int, int], authorship: Authorship
) -> OldAuthors:
    """Before a writer's update is applied: the author of each entry of the array `root`
    it deletes, by the entry's position now. An entry is deleted only when its own item
    is in the update's delete set, so when everything that set removes has one author,
    that is every deleted entry's author (the usual case, and free). Several authors: each
    one's deletions are applied alone to a copy of the room, and the entries each copy
    loses are that author's (a copy of the room per author: only for such updates)."""
    try:
        removed = removed_before([update], clocks)
    except ProtocolError:
        return unknown_authors  # malformed: applying it reports what is wrong
    groups = authorship.split(removed)
    if len(groups) <= 1:
        only = next(iter(groups), None)
        return lambda _position: only
    before = doc.get_update()
    found: dict[int, str | None] = {}
    for author, ranges in groups.items():
        for position in _positions_deleted(before, root, encode_delete_set(ranges)):
            found[position] = author
    return found.get


def unknown_authors(_position: int) -> str | None:
    """No entry has a known author (nothing judged by client id yet)."""
    return None


def _positions_deleted(state: bytes, root: str, deletions: bytes) -> list[int]:
    """The positions in `root` (an array) of the entries `deletions` removes from `state`."""
    scratch: Doc[Any] = Doc()
    scratch.apply_update(state)
    array = scratch.get(root, type=Array)
    deltas: list[list[dict[str, Any]]] = []
    array.observe(lambda event: deltas.append(list(event.delta)))
    scratch.apply_update(deletions)
    positions: list[int] = []
    for delta in deltas:
        at = 0
        for op in delta:
            if "retain" in op:
                at += op["retain"]
            elif "delete" in op:
                positions += range(at, at + op["delete"])
                at += op["delete"]
    return positions


def entry_author(array: Any, position: int, authorship: Authorship) -> str | None:
    """The author of the entry at `position` of an array: its item's client id's user."""
    found = StickyIndex.new(array, position, Assoc.AFTER).to_json().get("item")
    if not isinstance(found, dict):
        return None
    return authorship.author(int(found["client"]), int(found["clock"]))


def server_clock(doc: Doc[Any]) -> int:
    """The next clock of the document's own client id (what the server writes next)."""
    return decode_state_vector(doc.get_state()).get(doc.client_id, 0)


def record_authored(docs: DocStore, room: str, found: Iterable[AuthoredRange]) -> None:
    """Store the server's ranges with their users. Runs on the store's writer thread."""
    for client, start, end, user in found:
        value = f"{end}\t{user}".encode()
        docs.set_meta(room, f"{PREFIX}{client}:{start}", value)


def stored_authored(docs: DocStore, room: str, client: int | None = None) -> list[AuthoredRange]:
    """Every recorded server range of a room (of one client id's, given one)."""
    found: list[AuthoredRange] = []
    prefix = PREFIX if client is None else f"{PREFIX}{client}:"
    for name, value in docs.scan_meta(room, prefix):
        writer, start = name[len(PREFIX) :].split(":")
        end, user = value.decode("utf-8").split("\t", 1)
        found.append((int(writer), int(start), int(end), user))
    return found
