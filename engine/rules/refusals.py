"""The history's record of refusals: which log entry a rule or `Hooks.check` partly
undid, by whose update, and why.

The entry itself holds the attempt merged with its undo (so `?at=` and the change feed
never show the forbidden state); the record says what happened, in per-room metadata
(`refused:SEQ`, JSON) written right after the commit, on both backends, with a running
count of them (`refusals`, added to atomically, so processes sharing Redis never lose
one). A crash between the commit and this write loses the record, never the undo.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from engine.storage import DocStore

PREFIX = "refused:"
COUNT = "refusals"  # how many records there are: a listing reads it for every room, each second


def record_refusals(
    docs: DocStore, room: str, refusals: Iterable[tuple[int, dict[str, Any]]]
) -> None:
    """Store each (seq, record). Runs on the store's writer thread."""
    count = 0
    for seq, record in refusals:
        docs.set_meta(room, f"{PREFIX}{seq}", json.dumps(record).encode("utf-8"))
        count += 1
    if count:
        docs.add_to_meta(room, COUNT, count)


def stored_refusals(docs: DocStore, room: str) -> dict[int, dict[str, Any]]:
    """Every refusal record of a room, by seq."""
    return {
        int(name[len(PREFIX) :]): json.loads(value) for name, value in docs.scan_meta(room, PREFIX)
    }


def refusal_count(docs: DocStore, room: str) -> int:
    """How many of a room's log entries a rule or `Hooks.check` partly undid: one read
    (the rooms table asks for every room each second; counting the records would read
    a hash holding every client-id binding on Redis)."""
    return int(docs.get_meta(room, COUNT) or b"0")
