"""One protected root of a room (an array or a map) with the rules on it and below it:
judge what a writer's update changed there, and undo exactly the forbidden part.

A rule's path is a root, then steps: `[*]` (every entry of an array or a map) or `.KEY`
(one key of a map), e.g. `boards[*].cards[*]`. A change is governed by the deepest rule
whose path matches a container on the way to it: a change *of* that container (an entry
inserted, deleted, set or overwritten) is judged by the rule's entry policies; a change
*inside* one of its entries (at any depth) is a change of that entry. So reactions inside
someone else's message are judged by the reactions rule alone.

The root keeps a typed copy of its content (engine/rules/copies.py), kept current from
the events of every transaction (a root-level delta or the touched keys, so a change costs
what it touches, not the root's size). The copy is what a deleted or overwritten part is
put back from. Events carry post-transaction positions; deltas say where, in the old
content, each delete was, so every container a delta changed gets a "view": for each
post-update position, the old copy that is now there (or NEW).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pycrdt import Array, ArrayEvent, Map, MapEvent, TextEvent

from engine.rules.authorship import (
    AuthoredRange,
    Authorship,
    OldAuthors,
    entry_author,
    unknown_authors,
)
from engine.rules.copies import MISSING, ArrayCopy, MapCopy, copy_of, field_of
from engine.rules.map_entries import RootMapEntries
from engine.rules.model import PartRule, Segment
from engine.rules.types import must_stay
from engine.rules.undo import OpKind, Path, Refusal, Step, UndoOp, undo

NEW: Any = object()  # an entry this transaction inserted: it has no old copy


@dataclass(slots=True)
class Writer:
    """Who sent the update. `named`: False for the anonymous writers of an open server,
    whom rules naming users cannot tell apart (those rules are not judged for them)."""

    user: str | None
    roles: frozenset[str] = frozenset()
    named: bool = True


def show(path: Iterable[Any]) -> str:
    """`messages[0].reactions` for the steps ('messages', 0, 'reactions')."""
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else str(step))
    return text


def _entry(container: str, at: Step) -> str:
    return f"{container}[{at}]" if isinstance(at, int) else f"{container}[{at!r}]"


def by_client_id(rule: PartRule) -> bool:
    """Whether a rule's entries are their authors' by bound client id (no author_field)."""
    return rule.entries == "author" and rule.author_field is None


def _matches(pattern: tuple[Segment, ...], path: Path) -> bool:
    return all(step is None or step == actual for step, actual in zip(pattern, path, strict=False))


class ProtectedRoot:
    """One root with its rules: the typed copy of its content and the judge."""

    def __init__(
        self,
        name: str,
        root: Array[Any] | Map[Any],
        rules: Iterable[PartRule],
        authorship: Authorship | None = None,
    ):
        self.name = name
        self.root = root
        self.patterns: dict[tuple[Segment, ...], list[PartRule]] = {}
        for rule in rules:
            self.patterns.setdefault(rule.below, []).append(rule)
        self.authorship = authorship or Authorship()
        # entries = "author" without author_field (root arrays and maps): on an array, the
        # authors of the entries the update deletes, by old position, found before the
        # apply; changes inside entries, judged after it (a position's item is read then).
        # On a map, each key's item, known before the apply (engine/rules/map_entries.py)
        self.by_id = any(by_client_id(rule) for rule in self.patterns.get((), []))
        self.entries = RootMapEntries(name) if self.by_id and isinstance(root, Map) else None
        self.old_authors: OldAuthors = unknown_authors
        self.inside: list[tuple[int, Any, list[Any]]] = []
        self.authored: list[AuthoredRange] = []  # what the last undo wrote, and for whom
        self.deepest = sorted(self.patterns, key=len, reverse=True)
        self.copy: Any = copy_of(root)
        self.judged_inserts: dict[int, Any] = {}  # the copies the judge made of new entries
        self.writer: Writer | None = None
        self.refusal: Refusal | None = None
        self.loose = False  # the update may put characters into this (array) root

    def governing(self, path: Path) -> tuple[list[PartRule], int] | None:
        """The rules of the deepest rule path matching a container on `path`, and its depth."""
        for pattern in self.deepest:
            if len(pattern) <= len(path) and _matches(pattern, path):
                return self.patterns[pattern], len(pattern)
        return None

    # ------------------------------------------------------------ events

    def on_events(self, events: list[Any]) -> None:
        self.judged_inserts.clear()
        ordered = sorted(events, key=lambda event: len(event.path))
        views: dict[Path, list[Any]] = {}
        for event in ordered:
            if isinstance(event, ArrayEvent):
                path = tuple(getattr(event, "path", ()))
                views[path] = _view(self._old(path, views), getattr(event, "delta", []))
        if self.writer is not None:
            for event in ordered:
                self._judge(event, views)
        self._refresh(ordered, views)
        if self.entries is not None:
            keys = _root_keys(ordered)
            self.entries.changed(keys, {key for key in keys if key in self.root})

    def _old(self, path: Path, views: dict[Path, list[Any]]) -> Any:
        """The copy, from before this transaction, of what is now at `path` (MISSING
        when it is new)."""
        current = self.copy
        for depth, step in enumerate(path):
            view = views.get(path[:depth])
            if view is not None and isinstance(step, int):
                current = view[step] if 0 <= step < len(view) else MISSING
            else:
                current = field_of(current, step)
            if current is MISSING or current is NEW:
                return MISSING
        return current

    def _refresh(self, events: list[Any], views: dict[Path, list[Any]]) -> None:
        """Bring the copy up to date with what the transaction changed. A new entry the
        judge copied already (reading it as it is after the transaction, as here) is not
        copied again, nor is one copied here twice: reading a shared type is most of what
        judging an appended message costs."""
        if isinstance(self.root, Array):
            view = views.get(())
            items = list(self.copy.items) if view is None else list(view)
            fresh: set[int] = set()
            for at, item in enumerate(items):
                if item is NEW:
                    judged = self.judged_inserts.get(at, MISSING)
                    items[at] = copy_of(self.root[at]) if judged is MISSING else judged
                    fresh.add(at)
            for at in {event.path[0] for event in events if event.path} - fresh:
                items[at] = copy_of(self.root[at])
            self.judged_inserts.clear()
            self.copy = ArrayCopy(items)
            return
        entries = dict(self.copy.items)
        keys: set[str] = set()
        for event in events:
            keys.update(event.path[:1] if event.path else getattr(event, "keys", {}))
        for key in keys:
            if key in self.root:
                entries[key] = copy_of(self.root[key])
            else:
                entries.pop(key, None)
        self.copy = MapCopy(entries)

    # ------------------------------------------------------------ judging

    def _refuse(self, reason: str) -> Refusal:
        if self.refusal is None:
            self.refusal = Refusal(f"rule: {reason}")
        return self.refusal

    def _judge(self, event: Any, views: dict[Path, list[Any]]) -> None:
        path = tuple(event.path)
        found = self.governing(path)
        if found is None:
            return
        rules, depth = found
        if depth < len(path):
            self._judge_inside(rules, path, depth, event, views)
        elif isinstance(event, ArrayEvent):
            self._judge_array(rules, path, event, views)
        elif isinstance(event, MapEvent):
            self._judge_map(rules, path, event, views)
        elif isinstance(event, TextEvent) and path:
            self._judge_characters(rules, path, event, views)

    def _judge_array(
        self, rules: list[PartRule], path: Path, event: Any, views: dict[Path, list[Any]]
    ) -> None:
        old = self._old(path, views)
        items = old.items if isinstance(old, ArrayCopy) else []
        pre = post = 0
        for op in event.delta:
            if "retain" in op:
                pre += op["retain"]
                post += op["retain"]
            elif "delete" in op:
                for order, copy in enumerate(items[pre : pre + op["delete"]]):
                    author = self.old_authors(pre + order) if not path else None
                    reason = self._first(rules, self._removing, path, post, copy, author=author)
                    if reason is not None:
                        undo = UndoOp(path, "reinsert", post, order, copy, author)
                        self._refuse(reason).add(undo)
                pre += op["delete"]
            else:
                for value in op["insert"]:
                    new = copy_of(value)
                    if not path:
                        self.judged_inserts[post] = new  # the copy's entry too (_refresh)
                    reason = self._first(rules, self._adding, path, post, new)
                    if reason is not None:
                        self._refuse(reason).add(UndoOp(path, "remove", post))
                    post += 1

    def _judge_map(
        self, rules: list[PartRule], path: Path, event: Any, views: dict[Path, list[Any]]
    ) -> None:
        old = self._old(path, views)
        for key, change in event.keys.items():
            before = field_of(old, key)
            action = change.get("action")
            reason = None
            author = self._key_author(path, key)
            if action in ("delete", "update"):
                overwrite = action == "update"
                reason = self._first(
                    rules, self._removing, path, key, before, overwrite=overwrite, author=author
                )
            if reason is None and action in ("add", "update"):
                new = copy_of(change.get("newValue"))
                reason = self._first(rules, self._adding, path, key, new)
            if reason is not None:
                self._refuse(reason).add(UndoOp(path, "put", key, copy=before, author=author))

    def _judge_characters(
        self, rules: list[PartRule], path: Path, event: Any, views: dict[Path, list[Any]]
    ) -> None:
        """A text governed by a rule of its own: only `write` and `append_only` say
        anything about characters; a refusal puts the whole text back."""
        deletes = any("delete" in op for op in event.delta)
        for rule in rules:
            reason = self._unwritable(rule, path) or (
                f"{show((self.name, *path))} is append-only"
                if rule.append_only and deletes
                else None
            )
            if reason is not None:
                self._put_entry_back(path[:-1], path[-1], self._old(path, views), reason)
                return

    def _judge_inside(
        self,
        rules: list[PartRule],
        path: Path,
        depth: int,
        event: Any,
        views: dict[Path, list[Any]],
    ) -> None:
        """A change inside entry `path[depth]` of a governed container."""
        container, at = path[:depth], path[depth]
        before = self._old(path[: depth + 1], views)
        if before is MISSING:
            return  # inside an entry this very transaction inserted
        keys: list[Any]
        if depth + 1 < len(path):
            keys = [path[depth + 1]]
        elif isinstance(event, MapEvent):
            keys = list(getattr(event, "keys", {}))
        else:
            keys = [None]  # the entry is an array or text whose content changed
        reason = self._first(rules, self._changing, container, at, before, keys)
        if reason is not None:
            self._undo_inside(container, at, before, keys, reason, self._key_author(container, at))

    def _undo_inside(
        self,
        container: Path,
        at: Step,
        before: Any,
        keys: list[Any],
        reason: str,
        author: str | None = None,
    ) -> None:
        if not isinstance(before, MapCopy) or None in keys:
            self._put_entry_back(container, at, before, reason, author)
            return
        for key in keys:
            entry = (*container, at)
            self._refuse(reason).add(UndoOp(entry, "put", key, copy=field_of(before, key)))

    def _put_entry_back(
        self, container: Path, at: Step, before: Any, reason: str, author: str | None = None
    ) -> None:
        kind: OpKind = "replace" if isinstance(at, int) else "put"
        self._refuse(reason).add(UndoOp(container, kind, at, copy=before, author=author))

    def judge_inside_entries(self) -> None:
        """After the apply: changes inside root entries whose authors are their client
        ids' users (an entry's item is read from its position, which an observer cannot).
        Asked after every apply: most change no entry's inside, and cost nothing here."""
        if not self.inside:
            return
        pending, self.inside = self.inside, []
        writer = self.writer
        if writer is None:
            return
        for at, before, keys in pending:
            author = entry_author(self.root, at, self.authorship)
            if author is None or author != writer.user:
                where = _entry(self.name, at)
                self._undo_inside(
                    (), at, before, keys, f"only the author can change {where}", author
                )

    # ------------------------------------------------------------ policies

    @staticmethod
    def _first(rules: list[PartRule], judge: Any, *args: Any, **kwargs: Any) -> str | None:
        """The first rule's reason to refuse (`judge(rule, *args)`), or None."""
        for rule in rules:
            reason = judge(rule, *args, **kwargs)
            if reason is not None:
                return str(reason)
        return None

    def _unwritable(self, rule: PartRule, path: Path) -> str | None:
        writer = self.writer
        assert writer is not None
        if rule.write.allows(writer.user, writer.roles):
            return None
        return f"{show((self.name, *path))} is not writable by you"

    def _adding(self, rule: PartRule, path: Path, at: Step, new: Any) -> str | None:
        writer = self.writer
        assert writer is not None
        where = show((self.name, *path))
        if self.loose and not path and rule.type == "array" and isinstance(new, str):
            return must_stay(self.name, "array")[len("rule: ") :]
        if unwritable := self._unwritable(rule, path):
            return unwritable
        if not writer.named:
            return None
        if rule.user_keys is not None and not self._owns_key(rule, at):
            return f"only its own user can set {_entry(where, at)}"
        if rule.author_field and field_of(new, rule.author_field) != writer.user:
            return f"{_entry(where, at)}.{rule.author_field} must be your name"
        return None

    def _removing(
        self,
        rule: PartRule,
        path: Path,
        at: Step,
        before: Any,
        *,
        overwrite: bool = False,
        author: str | None = None,
    ) -> str | None:
        """An entry deleted or overwritten (`author`: its writer, for a rule by client id)."""
        if reason := self._replacing(rule, path, at):
            return reason
        where = show((self.name, *path))
        if self._named() and rule.entries == "author" and not self._is_author(rule, before, author):
            return f"only the author can {'change' if overwrite else 'delete'} {_entry(where, at)}"
        return None

    def _changing(
        self, rule: PartRule, container: Path, at: Step, before: Any, keys: list[Any]
    ) -> str | None:
        """Something inside an entry changed (`keys`: its changed fields)."""
        if reason := self._replacing(rule, container, at):
            return reason
        if not self._named():
            return None
        where = show((self.name, *container))
        if rule.author_field and rule.author_field in keys:
            return f"{_entry(where, at)}.{rule.author_field} cannot change"
        if by_client_id(rule) and not container and isinstance(at, int):
            if not self._moderates(rule):
                self.inside.append((at, before, keys))  # judged after the apply
            return None
        if by_client_id(rule):  # a root map's entry: its value's item's user
            if self._is_author(rule, before, self._key_author((), at)):
                return None
            return f"only the author can change {_entry(where, at)}"
        if rule.entries == "author" and not self._is_author(rule, before):
            return f"only the author can change {_entry(where, at)}"
        return None

    def _replacing(self, rule: PartRule, path: Path, at: Step) -> str | None:
        """What forbids removing or changing any existing entry of the container."""
        if unwritable := self._unwritable(rule, path):
            return unwritable
        where = show((self.name, *path))
        if rule.append_only:
            return f"{where} is append-only"
        if self._named() and rule.user_keys is not None and not self._owns_key(rule, at):
            return f"only its own user can set {_entry(where, at)}"
        return None

    def _key_author(self, container: Path, key: Step) -> str | None:
        """The author of a root map entry's value as it was before this update (None:
        unknown, or not a root map whose entries are their authors' by client id)."""
        if self.entries is None or container or not isinstance(key, str):
            return None
        item = self.entries.item(key)
        return None if item is None else self.authorship.author(*item)

    def _named(self) -> bool:
        return self.writer is not None and self.writer.named

    def _owns_key(self, rule: PartRule, key: Step) -> bool:
        writer = self.writer
        assert writer is not None
        if rule.moderators.allows(writer.user, writer.roles):
            return True
        return isinstance(key, str) and rule.key_user(key) == writer.user

    def _moderates(self, rule: PartRule) -> bool:
        writer = self.writer
        assert writer is not None
        return rule.moderators.allows(writer.user, writer.roles)

    def _is_author(self, rule: PartRule, before: Any, author: str | None = None) -> bool:
        """Whether the writer wrote (or moderates) an entry: by its author field, or by
        `author` (its item's client id's user; None: unknown, moderators only)."""
        writer = self.writer
        assert writer is not None
        if self._moderates(rule):
            return True
        if rule.author_field is None:
            return author is not None and author == writer.user
        return bool(field_of(before, rule.author_field) == writer.user)

    # ------------------------------------------------------------ the undo

    def undo(self, refusal: Refusal) -> None:
        """Put back what was refused (inside the caller's transaction); `authored`: what
        it wrote for known authors (engine/rules/undo.py)."""
        self.authored = undo(self.root, refusal)


def _root_keys(events: list[Any]) -> set[str]:
    """The keys of a root map a transaction set or deleted."""
    return {key for event in events if not event.path for key in getattr(event, "keys", {})}


def _view(old: Any, delta: list[dict[str, Any]]) -> list[Any]:
    """For each post-transaction position of an array, the old copy now there (or NEW)."""
    items = old.items if isinstance(old, ArrayCopy) else []
    view: list[Any] = []
    pre = 0
    for op in delta:
        if "retain" in op:
            view += items[pre : pre + op["retain"]]
            pre += op["retain"]
        elif "delete" in op:
            pre += op["delete"]
        else:
            view += [NEW] * len(op["insert"])
    return view + items[pre:]
