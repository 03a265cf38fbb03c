"""Who wrote what an update deletes or overwrites, per change, for `Hooks.check`.

pycrdt events say what changed, not which items did, so a change cannot name the item it
removed. What an apply removed is known, though: the delete set of its transaction (the
items the update deletes, and a map value an overwrite replaced), whose client ids are
bound to users (engine/rules/owners.py). From that:

- All removed items belong to one user (the usual case: deleting one's own message, or
  one other user's): every delete and set has that author. Exact, and free.
- Several users: the update is replayed on a scratch copy of the room as it was before
  the apply, one owner's removals at a time, then the rest of the update. Each change a
  step describes has that step's owner; a set at a path an owner's step just emptied is
  that owner's overwrite. Exact too, but it costs a copy of the room, so the actor keeps
  the state from before the apply only when the update's own delete set already names
  several owners. A delete's path is then its position when its owner's step removed it
  (as in a delta, where a deleted entry does not move the next one).
- Several users, but only the transaction (not the update's delete set) named the second
  one: a hand-crafted update that overwrites a map value without naming it. Its delete
  and set changes all get every owner (per update, as a hook must then assume).

Items whose author is unknown (a client id bound to nobody, as for items written before ids
were bound, or the server's own with no record naming a user) have no author.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from functools import partial
from typing import Any, Protocol

from pycrdt import Doc

from engine.jsonview import root_of, root_types
from engine.protocol import write_varuint
from engine.rules.edits import EditChange, describe
from engine.update_scan import DeleteRange, read_delete_set

_REPLACING = ("delete", "set")


def removed_before(updates: Iterable[bytes], clocks: Mapping[int, int]) -> list[DeleteRange]:
    """The ranges of items that existed at `clocks` and these transactions deleted."""
    removed: list[DeleteRange] = []
    for update in updates:
        _, ranges = read_delete_set(update)
        for client, clock, length in ranges:
            end = min(clock + length, clocks.get(client, 0))
            if end > clock:
                removed.append((client, clock, end - clock))
    return removed


class Owners(Protocol):
    """Who wrote which items (engine/rules/authorship.py's `Authorship`)."""

    def split(self, ranges: Iterable[DeleteRange]) -> dict[str | None, list[DeleteRange]]: ...


def by_owner(ranges: Iterable[DeleteRange], owners: Owners) -> dict[str, list[DeleteRange]]:
    """The ranges grouped by their items' authors (those of unknown authors left out): the
    users their client ids are bound to, or for what the server wrote, the users its
    records name."""
    return {owner: found for owner, found in owners.split(ranges).items() if owner is not None}


def owner_count(update: bytes, owners: Owners, clocks: Mapping[int, int]) -> int:
    """How many users own what the update's own delete set removes (0 if malformed)."""
    try:
        return len(by_owner(removed_before([update], clocks), owners))
    except Exception:  # malformed: applying it reports what is wrong
        return 0


def attribute(
    changes: list[EditChange],
    removed: dict[str, list[DeleteRange]],
    before: bytes | None,
    update: bytes,
) -> tuple[EditChange, ...]:
    """The changes with the authors of what each delete or set removed (module docstring)."""
    if len(removed) > 1 and before is not None:
        return tuple(replay_by_owner(before, update, removed))
    authors = tuple(sorted(removed))
    return tuple(
        replace(change, authors=authors) if change.kind in _REPLACING else change
        for change in changes
    )


def replay_by_owner(
    before: bytes, update: bytes, removed: dict[str, list[DeleteRange]]
) -> list[EditChange]:
    """Describe `update` applied to a copy of `before`, one owner's removals at a time."""
    scratch: Doc[Any] = Doc()
    scratch.apply_update(before)
    recorded: list[EditChange] = []
    observed: list[Any] = []  # a root object that is dropped stops observing
    for name, kind in {**root_types(before), **root_types(update)}.items():
        try:
            shared = root_of(scratch, name, kind)
        except Exception:  # a root pycrdt holds as another type: not described
            continue
        shared.observe_deep(partial(_record, recorded, name))
        observed.append(shared)
    changes: list[EditChange] = []
    emptied: dict[str, int] = {}  # path -> index in changes of the delete that emptied it
    for owner, ranges in sorted(removed.items()):
        recorded.clear()
        scratch.apply_update(encode_delete_set(ranges))
        for change in recorded:
            if change.kind == "delete":
                emptied[change.path] = len(changes)
            changes.append(replace(change, authors=(owner,)))
    recorded.clear()
    scratch.apply_update(update)
    overwritten: set[int] = set()
    for change in recorded:
        at = emptied.pop(change.path, None) if change.kind == "set" else None
        if at is not None:  # an overwrite: the owner's removal and this set are one change
            overwritten.add(at)
            change = replace(change, authors=changes[at].authors)
        changes.append(change)
    return [change for index, change in enumerate(changes) if index not in overwritten]


def _record(recorded: list[EditChange], root: str, events: list[Any]) -> None:
    recorded.extend(change for event in events for change in describe(root, event))


def encode_delete_set(ranges: Iterable[DeleteRange]) -> bytes:
    """A v1 update with no structs and these deletions."""
    grouped: dict[int, list[tuple[int, int]]] = {}
    for client, clock, length in ranges:
        grouped.setdefault(client, []).append((clock, length))
    out = bytearray()
    write_varuint(out, 0)
    write_varuint(out, len(grouped))
    for client, found in grouped.items():
        write_varuint(out, client)
        write_varuint(out, len(found))
        for clock, length in found:
            write_varuint(out, clock)
            write_varuint(out, length)
    return bytes(out)
