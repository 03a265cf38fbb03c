"""Judge what a writer's update did to the protected parts of a room, and undo exactly
the forbidden part as one more edit in the same batch.

What this build enforces (other rule shapes are refused at start by `check_enforceable`):
- `type` on any root (engine/rules/types.py: checked before the apply, refused whole);
- on array and map roots and on any path below them (`boards[*].cards[*]`, `prefs.theme`):
  `write` (who may change the part at all), `append_only` (insert, or set a new key, only),
  `entries = "author"` with `author_field` (an entry's author is the name in that field,
  which must be the inserting user's, so it survives a re-insertion by an undo),
  `moderators`, and `user_keys` on maps (engine/rules/parts.py says which rule governs
  a change);
- `entries = "author"` without `author_field` on array and map roots: an entry is the
  user's its item's client id is bound to (engine/rules/authorship.py; a map entry's item
  from engine/rules/map_entries.py);
- `write` on text and xml roots (given `type = "text"` or `"xml"`): an edit by anyone
  else is undone whole (engine/rules/texts.py).

A protected root keeps the kind its rules assume (an implied `type`): `type` when given,
else a map when a rule steps into it with `.KEY` or gives it `user_keys`, else an array.
An update writing it as something else is refused whole, like an explicit `type`.

How: the room's Doc has a deep observer on each protected root, which keeps a typed copy
of its content (so a deleted entry can be put back with its content) and, while a
writer's update is being applied, judges each change the events describe. Events fire
only for what actually changed, so replaying structs or deletions the room already holds
judges nothing. The undo is made on the live document (server authority) and captured as
an update, which the actor merges with the writer's update into one log entry and one
broadcast: no replica and no seq ever shows the forbidden state.

Limit: events say what changed, not which struct did it; an update whose structs wait for
a missing dependency would integrate later under another writer's apply, so the actor
refuses such updates in rooms with rules (server/rooms/guard.py, `require_whole`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pycrdt import Array, Doc, Map, merge_updates

from engine.errors import RulesInvalid
from engine.rules.authorship import (
    AuthoredRange,
    Authorship,
    deleted_entry_authors,
    unknown_authors,
)
from engine.rules.model import PartRule
from engine.rules.parts import ProtectedRoot, Writer, by_client_id
from engine.rules.texts import TEXT_KINDS, GuardedText
from engine.rules.types import check_types, typed_roots
from engine.rules.undo import Refusal
from engine.update_shape import UpdateShape
from engine.yjs import decode_state_vector

ORIGIN = "rules"

__all__ = ["ORIGIN", "RoomRules", "Writer", "check_enforceable", "root_kinds"]


def check_enforceable(rules: Iterable[PartRule]) -> None:
    """Raises RulesInvalid for a rule this build cannot enforce (never run unprotected)."""
    rules = tuple(rules)
    kinds = root_kinds(rules)
    for rule in rules:
        kind = kinds.get(rule.root)
        if kind in TEXT_KINDS and _judged(rule) and not _only_write(rule):
            raise RulesInvalid(
                f"rule {rule.number} ({rule.path}): on a {kind} root only 'write' (and "
                "'type') are enforced, on the root itself"
            )
        if by_client_id(rule) and (rule.below or kinds.get(rule.root) not in ("array", "map")):
            raise RulesInvalid(
                f"rule {rule.number} ({rule.path}): entries = 'author' without 'author_field' "
                "is enforced on the entries of an array or map root (give 'author_field' here)"
            )


def root_kinds(rules: Iterable[PartRule]) -> dict[str, str]:
    """The kind (array or map) each judged root's rules assume (see the module docstring).

    Raises:
        RulesInvalid: the rules assume both, e.g. `type = "array"` and a `.KEY` step.
    """
    rules = tuple(rules)
    judged = {rule.root for rule in rules if _judged(rule)}
    kinds: dict[str, str] = {}
    for root in sorted(judged):
        on_root = [rule for rule in rules if rule.root == root]
        stated = {rule.type for rule in on_root if rule.type is not None}
        keyed = [
            rule for rule in on_root
            if (rule.below and rule.below[0] is not None)
            or (not rule.below and rule.user_keys is not None)
        ]  # fmt: skip
        if len(stated) > 1:
            raise RulesInvalid(
                f"rules on {root}: more than one 'type' ({', '.join(sorted(stated))})"
            )
        kind = stated.pop() if stated else ("map" if keyed else "array")
        if kind == "array" and keyed:
            rule = keyed[0]
            raise RulesInvalid(
                f"rule {rule.number} ({rule.path}): {root} is an array here; "
                "'.KEY' steps and 'user_keys' need a map"
            )
        kinds[root] = kind
    return kinds


def _only_write(rule: PartRule) -> bool:
    """A rule on a root that says who may write it, and nothing else but its type."""
    return not rule.below and rule == PartRule(
        rule.number, rule.rooms, rule.root, (), type=rule.type, write=rule.write
    )


def _judged(rule: PartRule) -> bool:
    """Whether a rule says more than `type` (then it is judged by a protected root)."""
    return rule != PartRule(rule.number, rule.rooms, rule.root, rule.below, type=rule.type)


class RoomRules:
    """The rules of one room, attached to its live Doc."""

    def __init__(
        self, doc: Doc[Any], rules: Iterable[PartRule], authorship: Authorship | None = None
    ) -> None:
        self.doc = doc
        self.authorship = authorship or Authorship()
        self.authored: list[AuthoredRange] = []  # what the last undo wrote for whom
        self.parts: list[ProtectedRoot] = []
        self.texts: list[GuardedText] = []
        rules = tuple(rules)
        kinds = root_kinds(rules)
        self.types = {**kinds, **typed_roots(rules)}
        self._loose = False  # the next update holds characters it does not place
        for root, kind in kinds.items():
            if kind in TEXT_KINDS:
                on_root = (rule for rule in rules if rule.root == root)
                self.texts.append(GuardedText(doc, root, kind, on_root))
                continue
            shared: Array[Any] | Map[Any] = doc.get(root, type=Map if kind == "map" else Array)
            on_root = (rule for rule in rules if rule.root == root)
            part = ProtectedRoot(root, shared, on_root, self.authorship)
            shared.observe_deep(part.on_events)
            self.parts.append(part)
        for root, kind in typed_roots(rules).items():
            if kind == "array" and root not in kinds:  # characters loose in a typed array
                array = doc.get(root, type=Array)
                typed = [rule for rule in rules if rule.root == root and not rule.below]
                part = ProtectedRoot(root, array, typed)
                array.observe_deep(part.on_events)
                self.parts.append(part)

    def check_types(
        self, update: bytes, clocks: Mapping[int, int], shape: UpdateShape | None = None
    ) -> None:
        """Before an apply: raises UpdateRejected when the update would change a typed
        root's type (engine/rules/types.py says why this is refused, not undone).
        `shape`: the update's scan, when the caller has it (then the update is not
        walked again unless it names a typed root)."""
        refs = shape.refs if shape is not None else None
        self._loose = check_types(update, self.types, clocks, refs)

    def start(
        self, writer: Writer, update: bytes = b"", clocks: Mapping[int, int] | None = None
    ) -> None:
        """The next apply is of `update` (the room at `clocks`) by `writer`: judge what it
        changes. Roots whose entries are their authors' by client id learn, now, who
        wrote the entries it deletes (engine/rules/authorship.py)."""
        for part in self.parts:
            part.writer, part.refusal, part.loose = writer, None, self._loose
            part.inside.clear()
            if part.by_id and writer.named and update:
                if part.entries is not None:
                    part.entries.before_apply(self.doc, update)
                    continue
                if clocks is None:
                    clocks = decode_state_vector(self.doc.get_state())
                part.old_authors = deleted_entry_authors(
                    self.doc, part.name, update, clocks, self.authorship
                )
        for text in self.texts:
            text.start(writer)
        self._loose = False

    def finish(self) -> tuple[bytes, str] | None:
        """Stop judging; when something was refused, undo it now and return the undo
        update and the reason."""
        return self.undo(self.stop())

    def stop(self) -> list[tuple[ProtectedRoot | GuardedText, Refusal]]:
        """Stop judging; what was refused, for `undo` (or dropped, when the whole update
        is undone another way). One pass per root: asked after every apply."""
        refused: list[tuple[ProtectedRoot | GuardedText, Refusal]] = []
        for part in self.parts:
            part.judge_inside_entries()
            if part.refusal is not None:
                refused.append((part, part.refusal))
            part.writer, part.refusal = None, None
            part.old_authors = unknown_authors
            if part.entries is not None:
                part.entries.done()
        for text in self.texts:
            refusal = text.stop()
            if refusal is not None:
                refused.append((text, refusal))
        return refused

    def undo(
        self, refused: list[tuple[ProtectedRoot | GuardedText, Refusal]]
    ) -> tuple[bytes, str] | None:
        """Undo what `stop` returned now; the undo update and the first reason."""
        if not refused:
            return None
        updates: list[bytes] = []
        self.authored = []
        subscription = self.doc.observe(lambda event: updates.append(bytes(event.update)))
        try:
            with self.doc.transaction(origin=ORIGIN):
                for part, refusal in refused:
                    if isinstance(part, ProtectedRoot):
                        part.undo(refusal)
                        self.authored += part.authored
            self.authorship.add(self.authored)
            for part, _ in refused:
                if isinstance(part, GuardedText):
                    part.undo()  # an UndoManager makes its own transaction
        finally:
            self.doc.unobserve(subscription)
        first = refused[0][1]
        undo = merge_updates(*updates) if len(updates) > 1 else (updates or [b"\x00\x00"])[0]
        for part, _ in refused:
            entries = part.entries if isinstance(part, ProtectedRoot) else None
            if entries is not None and isinstance(part.root, Map):
                entries.settle(bytes(undo), set(part.root.keys()))
        return bytes(undo), first.reason
