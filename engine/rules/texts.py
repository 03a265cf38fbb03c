"""A text or xml root that only some users or roles may write (`write = [...]`, or
"nobody": read-only), with `type = "text"` or `"xml"` saying what the root is.

Characters and xml nodes have no entries to judge one by one, so the whole root is the
part: an update by someone not allowed that changes it is undone whole, there. An
UndoManager scoped to the root remembers what the apply did; undoing it deletes the text
or nodes the update inserted and puts back what it deleted, with its formatting and
attributes, as the server's edit, which the actor commits and relays together with the
update (so no replica shows the forbidden state). Only a change judges: replaying old
structs or deletions changes nothing and refuses nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pycrdt import Doc, Text, UndoManager, XmlFragment

from engine.rules.model import PartRule
from engine.rules.parts import Writer
from engine.rules.undo import Refusal

TEXT_KINDS = ("text", "xml")


class GuardedText:
    """One text or xml root with its `write` rules. Its UndoManager exists only while an
    update by someone not allowed is applied (allowed writers pay nothing, and nothing
    else the room applies is remembered)."""

    def __init__(self, doc: Doc[Any], name: str, kind: str, rules: Iterable[PartRule]) -> None:
        self.name = name
        self.rules = tuple(rule for rule in rules if not rule.write.anyone)
        self.root: Any = doc.get(name, type=Text if kind == "text" else XmlFragment)
        self.history: UndoManager | None = None

    def start(self, writer: Writer) -> None:
        """The next apply is by `writer`: if they may not write the root, remember what
        the apply does to it."""
        self.history = None
        if not self._allowed(writer):
            self.history = UndoManager(scopes=[self.root], capture_timeout_millis=0)

    def stop(self) -> Refusal | None:
        """What to undo: the root changed under a writer not allowed to change it."""
        if self.history is None or not self.history.can_undo():
            self.history = None
            return None
        return Refusal(f"rule: {self.name} is not writable by you")

    def undo(self) -> None:
        """Undo the apply on the live document (never inside another transaction)."""
        history, self.history = self.history, None
        while history is not None and history.can_undo():
            history.undo()

    def _allowed(self, writer: Writer) -> bool:
        return all(rule.write.allows(writer.user, writer.roles) for rule in self.rules)
