"""The history's record of refusals: which log entry a rule or `Hooks.check` partly
undid, by whose update, and why.

The entry itself holds the attempt merged with its undo (so `?at=` and the change feed
never show the forbidden state), and its record (`rejected`: user, by, reason) is a field
of that same log record (engine/storage/records.py), so the two are one write on every
backend: no crash can keep one without the other. Earlier versions kept the record in
per-room metadata (`refused:SEQ`, JSON), written after the commit; those are still read.
A running count (`refusals`, added to atomically, so processes sharing Redis never lose
one) is kept for the rooms listing, after the commit: a crash in between can leave it one
batch short, never the history.
"""

from __future__ import annotations

import json
from typing import Any

from engine.storage import DocStore

PREFIX = "refused:"
COUNT = "refusals"  # how many records there are: a listing reads it for every room, each second


def count_refusals(docs: DocStore, room: str, count: int) -> None:
    """Add `count` refusals to the room's count. Runs on the store's writer thread."""
    if count:
        docs.add_to_meta(room, COUNT, count)


def stored_refusals(docs: DocStore, room: str) -> dict[int, dict[str, Any]]:
    """The refusal records earlier versions kept beside the log, by seq."""
    return {
        int(name[len(PREFIX) :]): json.loads(value) for name, value in docs.scan_meta(room, PREFIX)
    }


def refusal_count(docs: DocStore, room: str) -> int:
    """How many of a room's log entries a rule or `Hooks.check` partly undid: one read
    (the rooms table asks for every room each second; counting the records would read
    a hash holding every client-id binding on Redis)."""
    return int(docs.get_meta(room, COUNT) or b"0")
