"""Judge what a writer's update did to the protected parts of a room, and undo exactly
the forbidden part as one more edit in the same batch.

What this build enforces (other rule shapes are refused at start by `check_enforceable`):
- `type` on any root (engine/rules/types.py: checked before the apply, refused whole);
- an array root: `write` (who may change it at all), `append_only`, `entries = "author"`
  with `author_field` (an entry's author is the name in that field, which must be the
  inserting user's, so it survives a re-insertion by an undo), `moderators`;
- a map under every entry of such an array (`ROOT[*].KEY`): `user_keys`.

How: the room's Doc has a deep observer on each protected root, which keeps a typed copy
of every entry (so a deleted entry can be put back with its content) and, while a writer's
update is being applied, judges each change the events describe. Events fire only for
what actually changed, so replaying structs or deletions the room already holds judges
nothing. The undo is made on the live document (server authority) and captured as an
update, which the actor merges with the writer's update into one log entry and one
broadcast: no replica and no seq ever shows the forbidden state.

Limit: events say what changed, not which struct did it; an update whose structs wait for
a missing dependency would integrate later under another writer's apply, so the actor
refuses such updates in rooms with rules (see `integrates`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pycrdt import Array, Doc, Map, Text

from engine.errors import RulesInvalid
from engine.rules.model import PartRule
from engine.rules.types import check_types, must_stay, typed_roots

ORIGIN = "rules"
_MISSING = object()


def check_enforceable(rules: Iterable[PartRule]) -> None:
    """Raises RulesInvalid for a rule this build cannot enforce (never run unprotected)."""
    for rule in rules:
        where = f"rule {rule.number} ({rule.path})"
        if rule.type is not None and rule.type != "array" and _judged(rule):
            raise RulesInvalid(f"{where}: rules besides 'type' are enforced on array roots only")
        if not rule.below:
            if rule.user_keys is not None:
                raise RulesInvalid(f"{where}: 'user_keys' is enforced on ROOT[*].KEY maps only")
            if rule.entries == "author" and rule.author_field is None:
                raise RulesInvalid(f"{where}: entries = 'author' needs 'author_field' for now")
        elif len(rule.below) != 2 or rule.below[0] is not None or rule.user_keys is None:
            raise RulesInvalid(
                f"{where}: below a root, only ROOT[*].KEY with user_keys is enforced"
            )
        elif not rule.write.anyone or rule.append_only or rule.entries != "anyone":
            raise RulesInvalid(f"{where}: on ROOT[*].KEY only user_keys is enforced")


def _judged(rule: PartRule) -> bool:
    """Whether a rule says more than `type` (then it is judged on an array root)."""
    return rule != PartRule(rule.number, rule.rooms, rule.root, rule.below, type=rule.type)


# ---------------------------------------------------------------- typed copies


@dataclass(slots=True)
class MapCopy:
    items: dict[str, Any]


@dataclass(slots=True)
class ArrayCopy:
    items: list[Any]


@dataclass(slots=True)
class TextCopy:
    text: str


def copy_of(value: Any) -> Any:
    """A copy of a value that remembers which parts were shared types."""
    if isinstance(value, Map):
        return MapCopy({key: copy_of(item) for key, item in value.items()})
    if isinstance(value, Array):
        return ArrayCopy([copy_of(item) for item in value])
    if isinstance(value, Text):
        return TextCopy(str(value))
    return value


def prelim(copy: Any) -> Any:
    """A new value (shared types as preliminary ones) equal to a copy."""
    if isinstance(copy, MapCopy):
        return Map({key: prelim(item) for key, item in copy.items.items()})
    if isinstance(copy, ArrayCopy):
        return Array([prelim(item) for item in copy.items])
    if isinstance(copy, TextCopy):
        return Text(copy.text)
    return copy


def _field(copy: Any, key: str) -> Any:
    return copy.items.get(key, _MISSING) if isinstance(copy, MapCopy) else _MISSING


# ---------------------------------------------------------------- judging


@dataclass(slots=True)
class Writer:
    """Who sent the update. `named`: False for the anonymous writers of an open server,
    whom rules naming users cannot tell apart (those rules are not judged for them)."""

    user: str | None
    roles: frozenset[str] = frozenset()
    named: bool = True


@dataclass(slots=True)
class Refusal:
    """What the undo must do, in post-update positions of one array root."""

    reason: str
    put_back: list[tuple[int, tuple[str, ...], str, Any]] = field(default_factory=list)
    reinsert: list[tuple[int, int, Any]] = field(default_factory=list)  # at, order, copy
    remove: list[int] = field(default_factory=list)


class ProtectedArray:
    """One array root with its rules: the typed copy of its entries and the judge."""

    def __init__(self, root: Array[Any], rule: PartRule | None, keys: dict[str, PartRule]):
        self.root = root
        self.rule = rule
        self.keys = keys  # ROOT[*].KEY -> its rule
        self.entries: list[Any] = [copy_of(item) for item in root]
        self.writer: Writer | None = None
        self.refusal: Refusal | None = None
        self.loose = False  # the update may put characters into this (array) root

    def on_events(self, events: list[Any]) -> None:
        entries: list[Any] = []
        old = self.entries
        pre = 0
        for event in events:
            if event.path:
                continue
            post = 0
            for op in event.delta:
                if "retain" in op:
                    entries += old[pre : pre + op["retain"]]
                    pre += op["retain"]
                    post += op["retain"]
                elif "delete" in op:
                    for order, copy in enumerate(old[pre : pre + op["delete"]]):
                        self._judge_delete(post, order, copy)
                    pre += op["delete"]
                else:
                    for value in op["insert"]:
                        entries.append(copy_of(value))
                        self._judge_insert(post, entries[-1])
                        post += 1
        entries += old[pre:]
        touched = set()
        for event in events:
            if event.path:
                at = event.path[0]
                self._judge_nested(at, list(event.path[1:]), event, entries[at])
                touched.add(at)
        for at in touched:
            entries[at] = copy_of(self.root[at])
        self.entries = entries

    # a refusal collects every forbidden part of one update; the first reason is sent

    def _refuse(self, reason: str) -> Refusal:
        if self.refusal is None:
            self.refusal = Refusal(f"rule: {reason}")
        return self.refusal

    def _may_write(self) -> bool:
        return (
            self.writer is None
            or self.rule is None
            or self.rule.write.allows(self.writer.user, self.writer.roles)
        )

    def _judge_delete(self, at: int, order: int, copy: Any) -> None:
        writer, rule = self.writer, self.rule
        if writer is None or rule is None:
            return
        name = f"{rule.root}[{at}]"
        if not self._may_write():
            self._refuse(f"{rule.root} is not writable by you").reinsert.append((at, order, copy))
        elif rule.append_only:
            self._refuse(f"{rule.root} is append-only").reinsert.append((at, order, copy))
        elif rule.entries == "author" and not self._is_author(copy):
            reason = f"only the author can delete {name}"
            self._refuse(reason).reinsert.append((at, order, copy))

    def _judge_insert(self, at: int, copy: Any) -> None:
        writer, rule = self.writer, self.rule
        if writer is None or rule is None:
            return
        if self.loose and rule.type == "array" and isinstance(copy, str):
            self._refuse(must_stay(rule.root, "array")[len("rule: ") :]).remove.append(at)
        elif not self._may_write():
            self._refuse(f"{rule.root} is not writable by you").remove.append(at)
        elif rule.author_field and writer.named and _field(copy, rule.author_field) != writer.user:
            reason = f"{rule.root}[{at}].{rule.author_field} must be your name"
            self._refuse(reason).remove.append(at)

    def _judge_nested(self, at: int, path: list[Any], event: Any, old: Any) -> None:
        writer = self.writer
        if writer is None:
            return
        if path and path[0] in self.keys:  # a per-user-keys map inside the entry
            if not writer.named:
                return
            keys_rule = self.keys[path[0]]
            changed = [path[1]] if len(path) > 1 else list(getattr(event, "keys", {}))
            inner = _field(old, path[0])
            for key in changed:
                if keys_rule.key_user(key) == writer.user or keys_rule.moderators.allows(
                    writer.user, writer.roles
                ):
                    continue
                reason = f"only its own user can set {keys_rule.root}[{at}].{path[0]}[{key!r}]"
                self._refuse(reason).put_back.append((at, (path[0],), key, _field(inner, key)))
            return
        rule = self.rule
        if rule is None or self._may_change(old, path, event):
            return
        keys = [path[0]] if path else list(getattr(event, "keys", {}))
        for key in keys:
            reason = self._change_reason(at, key)
            self._refuse(reason).put_back.append((at, (), key, _field(old, key)))

    def _may_change(self, old: Any, path: list[Any], event: Any) -> bool:
        rule = self.rule
        assert rule is not None and self.writer is not None
        if not self._may_write() or rule.append_only:
            return False
        keys = [path[0]] if path else list(getattr(event, "keys", {}))
        if rule.author_field and rule.author_field in keys and self.writer.named:
            return False
        return rule.entries != "author" or self._is_author(old)

    def _change_reason(self, at: int, key: str) -> str:
        rule = self.rule
        assert rule is not None
        if not self._may_write():
            return f"{rule.root} is not writable by you"
        if rule.append_only:
            return f"{rule.root} is append-only"
        if key == rule.author_field:
            return f"{rule.root}[{at}].{key} cannot change"
        return f"only the author can change {rule.root}[{at}]"

    def _is_author(self, copy: Any) -> bool:
        rule, writer = self.rule, self.writer
        assert rule is not None and writer is not None
        if not writer.named or rule.moderators.allows(writer.user, writer.roles):
            return True
        return rule.author_field is not None and _field(copy, rule.author_field) == writer.user

    # ------------------------------------------------------------ the undo

    def undo(self, refusal: Refusal) -> None:
        """Put back what was refused (inside the caller's transaction): changed keys
        first (positions are post-update ones), then entries, from the end."""
        for at, path, key, value in refusal.put_back:
            target: Any = self.root[at]
            for step in path:
                target = target[step]
            if value is _MISSING:
                if key in target:
                    del target[key]
            else:
                target[key] = prelim(value)
        structural = [(at, 1, 0, None) for at in refusal.remove]
        structural += [(at, 0, order, copy) for at, order, copy in refusal.reinsert]
        for at, is_remove, _order, copy in sorted(structural, key=lambda s: (-s[0], -s[1], -s[2])):
            if is_remove:
                del self.root[at]
            else:
                self.root.insert(at, prelim(copy))


class RoomRules:
    """The rules of one room, attached to its live Doc."""

    def __init__(self, doc: Doc[Any], rules: Iterable[PartRule]) -> None:
        self.doc = doc
        self.parts: list[ProtectedArray] = []
        rules = tuple(rules)
        self.types = typed_roots(rules)
        self._loose = False  # the next update holds characters it does not place
        by_root: dict[str, list[PartRule]] = {}
        for rule in rules:
            if _judged(rule) or rule.type == "array":
                by_root.setdefault(rule.root, []).append(rule)
        for root, found in by_root.items():
            main = next((rule for rule in found if not rule.below), None)
            keys = {rule.below[1]: rule for rule in found if rule.below and rule.below[1]}
            part = ProtectedArray(doc.get(root, type=Array), main, keys)
            part.root.observe_deep(part.on_events)
            self.parts.append(part)

    def check_types(self, update: bytes, clocks: Mapping[int, int]) -> None:
        """Before an apply: raises UpdateRejected when the update would change a typed
        root's type (engine/rules/types.py says why this is refused, not undone)."""
        self._loose = check_types(update, self.types, clocks)

    def start(self, writer: Writer) -> None:
        """The next apply is by `writer`: judge what it changes."""
        for part in self.parts:
            part.writer, part.refusal, part.loose = writer, None, self._loose
        self._loose = False

    def finish(self) -> tuple[bytes, str] | None:
        """Stop judging; when something was refused, undo it now and return the undo
        update and the reason."""
        return self.undo(self.stop())

    def stop(self) -> list[tuple[ProtectedArray, Refusal]]:
        """Stop judging; what was refused, for `undo` (or dropped, when the whole update
        is undone another way)."""
        refused = [(part, part.refusal) for part in self.parts if part.refusal is not None]
        for part in self.parts:
            part.writer, part.refusal = None, None
        return refused

    def undo(self, refused: list[tuple[ProtectedArray, Refusal]]) -> tuple[bytes, str] | None:
        """Undo what `stop` returned now; the undo update and the first reason."""
        if not refused:
            return None
        updates: list[bytes] = []
        subscription = self.doc.observe(lambda event: updates.append(bytes(event.update)))
        try:
            with self.doc.transaction(origin=ORIGIN):
                for part, refusal in refused:
                    part.undo(refusal)
        finally:
            self.doc.unobserve(subscription)
        first = refused[0][1]
        return (updates[0] if updates else b"\x00\x00"), first.reason
