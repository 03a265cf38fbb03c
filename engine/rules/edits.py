"""What a writer's update does, described for `Hooks.check` without decoding Yjs, and the
undo of an update the hook refuses.

While an update is applied, deep observers on the room's roots turn the events into
`EditChange`s: the path from the root (`messages[17].text`), the kind (insert, delete,
set, format) and the new value. An UndoManager scoped to the same roots remembers the
apply; a refused edit is undone whole by it (deleted items come back with their content,
inserted ones go, overwritten entries are put back), on the live document, and the actor
merges that undo into the same commit as it does for a rule's refusal.

Roots the room does not hold yet are added (typed by what the update places in them,
engine/jsonview.py) before the apply, so an update creating a root is described and
undone like any other.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

from pycrdt import Doc, UndoManager, merge_updates

from engine.errors import ProtocolError
from engine.jsonview import root_of, root_types

log = logging.getLogger(__name__)

ChangeKind = Literal["insert", "delete", "set", "format"]
ORIGIN = "check"


@dataclass(frozen=True, slots=True)
class EditChange:
    """One thing an update does. `value`: the new value (insert, set, format's
    attributes), None for a delete. `authors`: on a delete or set, who wrote what the
    change deletes or overwrites (the users its client ids are bound to; see
    engine/rules/authors.py for how, and the one case that is per update)."""

    path: str
    kind: ChangeKind
    value: Any = None
    authors: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Edit:
    """An update a writer sent, as `Hooks.check` sees it."""

    user: str | None
    room: str
    changes: tuple[EditChange, ...]


@dataclass(frozen=True, slots=True)
class Verdict:
    """`Hooks.check`'s answer: `Verdict()` allows, `Verdict.refuse("why")` has the
    server undo the whole update (the sender is told `rule: why`)."""

    allowed: bool = True
    reason: str = ""

    @classmethod
    def refuse(cls, reason: str) -> Verdict:
        return cls(False, reason)


Check = Callable[[Edit], Verdict]
Authored = Callable[[list[EditChange], list[bytes]], tuple[EditChange, ...]]
Outcome = tuple[bytes, str, bool]  # the undo, the reason, whether the hook failed


def _plain(value: Any) -> Any:
    to_py = getattr(value, "to_py", None)
    return to_py() if callable(to_py) else value


def _path(root: str, steps: list[Any]) -> str:
    return root + "".join(f"[{step}]" if isinstance(step, int) else f".{step}" for step in steps)


def describe(root: str, event: Any) -> list[EditChange]:
    """What one pycrdt event under `root` changed, as EditChanges (no authors yet)."""
    changes: list[EditChange] = []
    steps = list(getattr(event, "path", []))
    keys = getattr(event, "keys", None)
    if keys:
        for key, change in keys.items():
            path = _path(root, [*steps, key])
            if change.get("action") == "delete":
                changes.append(EditChange(path, "delete"))
            else:
                changes.append(EditChange(path, "set", _plain(change.get("newValue"))))
    at = 0
    for op in getattr(event, "delta", None) or []:
        if "retain" in op:
            if op.get("attributes"):
                changes.append(
                    EditChange(_path(root, [*steps, at]), "format", dict(op["attributes"]))
                )
            at += op["retain"]
        elif "delete" in op:
            changes += [EditChange(_path(root, [*steps, at]), "delete")] * op["delete"]
        elif "insert" in op:
            inserted = op["insert"]
            if isinstance(inserted, str):
                changes.append(EditChange(_path(root, [*steps, at]), "insert", inserted))
                at += len(inserted)
            else:
                for value in inserted:
                    changes.append(EditChange(_path(root, [*steps, at]), "insert", _plain(value)))
                    at += 1
    return changes


class EditRecorder:
    """One room's observers for `Hooks.check`: describe, judge, undo."""

    def __init__(self, doc: Doc[Any], room: str, check: Check, budget_seconds: float) -> None:
        self.doc = doc
        self.room = room
        self.check = check
        self.budget = budget_seconds
        self.changes: list[EditChange] = []
        self.recording = False
        self.roots: set[str] = set()
        self._observed: list[Any] = []  # the observed roots (a dropped one stops observing)
        self.applied: list[bytes] = []  # the updates of the transactions of the apply
        self._applying: Any = None  # their subscription
        self.undo = UndoManager(scopes=[], capture_timeout_millis=0)
        self._add_roots(root_types(doc.get_update()))

    def _add_roots(self, kinds: dict[str, str]) -> None:
        for name, kind in kinds.items():
            if name in self.roots:
                continue
            try:
                root = root_of(self.doc, name, kind)
            except Exception:  # a root pycrdt holds as another type: not described
                log.warning("room %r: root %r cannot be observed as %s", self.room, name, kind)
                continue
            self.roots.add(name)
            self._observed.append(root)
            root.observe_deep(partial(self._on_events, name))
            self.undo.expand_scope(root)

    def start(self, update: bytes) -> None:
        """The next apply is a writer's: observe the roots it places structs in."""
        try:
            self._add_roots(root_types(update))
        except ProtocolError:
            pass  # malformed: applying it reports what is wrong
        self.undo.clear()
        self.changes.clear()
        self.applied.clear()
        self._applying = self.doc.observe(lambda event: self.applied.append(bytes(event.update)))
        self.recording = True

    def finish(self, user: str | None, authored: Authored | None = None) -> Outcome | None:
        """Stop recording and ask the hook; when it refuses (or fails, or is too slow),
        undo the whole apply now and return the undo update, the reason, and whether the
        hook failed (raised or ran past its budget) rather than refused. `authored` gives
        the changes their authors, from the transactions the apply made
        (engine/rules/authors.py)."""
        self.recording = False
        if self._applying is not None:
            self.doc.unobserve(self._applying)
            self._applying = None
        changes = authored(self.changes, self.applied) if authored else tuple(self.changes)
        self.changes.clear()
        self.applied.clear()
        if not changes:
            self.undo.clear()
            return None
        failed = False
        try:
            reason = self._judge(Edit(user, self.room, changes))
        except CheckFailed as exc:
            reason, failed = str(exc), True
        if reason is None:
            self.undo.clear()
            return None
        updates: list[bytes] = []
        subscription = self.doc.observe(lambda event: updates.append(bytes(event.update)))
        try:
            while self.undo.can_undo():
                self.undo.undo()
        finally:
            self.doc.unobserve(subscription)
            self.undo.clear()
        undo = bytes(merge_updates(*updates)) if updates else b"\x00\x00"
        return undo, reason, failed

    def _judge(self, edit: Edit) -> str | None:
        """None when allowed, else the reason sent to the writer."""
        began = time.perf_counter()
        try:
            verdict = self.check(edit)
        except Exception:
            log.exception("room %r: Hooks.check raised; the edit is refused", self.room)
            raise CheckFailed("rule: the server could not check this edit") from None
        took = time.perf_counter() - began
        if took > self.budget:
            log.error(
                "room %r: Hooks.check took %.3f s (budget %.3f s); the edit is refused",
                self.room,
                took,
                self.budget,
            )
            raise CheckFailed("rule: the server could not check this edit in time")
        if verdict.allowed:
            return None
        return f"rule: {verdict.reason or 'refused'}"

    def _on_events(self, root: str, events: list[Any]) -> None:
        if not self.recording:
            return
        for event in events:
            self.changes += describe(root, event)


class CheckFailed(Exception):
    """`Hooks.check` raised or ran past its budget: a refusal (the message is the reason
    the writer gets), counted apart from the hook's own refusals."""
