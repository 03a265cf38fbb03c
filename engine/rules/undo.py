"""The undo of a refused part: the steps that put back exactly what was forbidden, run
on the live document by the server, in post-update positions. Deeper containers first
(their positions do not move when a shallower one changes); in a container, puts and
replacements first, then inserts and removals from the end. A step that puts an entry
back for a known author says which of the server's clocks it wrote, so the entry stays
that author's (engine/rules/authorship.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from engine.rules.authorship import AuthoredRange, server_clock
from engine.rules.copies import MISSING, prelim

Step = int | str
Path = tuple[Step, ...]
OpKind = Literal["put", "replace", "reinsert", "remove"]


@dataclass(frozen=True, slots=True)
class UndoOp:
    """One step of an undo, in post-update positions: `put` a map key back (MISSING:
    remove it), `replace` an array entry, `reinsert` a deleted entry, `remove` an insert."""

    container: Path
    kind: OpKind
    at: Step
    order: int = 0  # among entries re-inserted at one position
    copy: Any = MISSING
    author: str | None = None  # who wrote the entry put back (kept for later rules)


@dataclass(slots=True)
class Refusal:
    """Every forbidden part of one update on one root; the first reason is sent."""

    reason: str
    ops: list[UndoOp] = field(default_factory=list)

    def add(self, op: UndoOp) -> None:
        if op.kind in ("put", "replace") and op in self.ops:
            return  # two changes inside one entry put it back once
        self.ops.append(op)


def undo(root: Any, refusal: Refusal) -> list[AuthoredRange]:
    """Run a refusal's steps on `root` (inside the caller's transaction); the ranges of
    the server's clocks written for known authors."""
    authored: list[AuthoredRange] = []
    doc = root.doc
    server = doc.client_id
    for op in sorted(refusal.ops, key=_undo_order):
        start = server_clock(doc) if op.author is not None else 0
        _undo_op(root, op)
        if op.author is not None:
            end = server_clock(doc)
            if end > start:
                authored.append((server, start, end, op.author))
    return authored


def _undo_op(root: Any, op: UndoOp) -> None:
    target: Any = root
    for step in op.container:
        target = target[step]
    if op.kind == "put":
        if op.copy is MISSING:
            if op.at in target:
                del target[op.at]
        else:
            target[op.at] = prelim(op.copy)
    elif op.kind == "replace":
        del target[op.at]
        target.insert(op.at, prelim(op.copy))
    elif op.kind == "remove":
        del target[op.at]
    else:
        target.insert(op.at, prelim(op.copy))


def _undo_order(op: UndoOp) -> tuple[int, int, int, int, int]:
    structural = op.kind in ("reinsert", "remove")
    at = op.at if structural and isinstance(op.at, int) else 0
    return (-len(op.container), int(structural), -at, -int(op.kind == "remove"), -op.order)
