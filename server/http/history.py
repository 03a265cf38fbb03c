"""A history page, read and encoded in one trip to a reading thread.

A page is the log's heads (engine/storage/heads.py), the room's counters, its fold
summaries and any refusal records kept beside the log. Each of those used to be a thread
hop of its own, and the JSON encoding one more: five hand-overs of the interpreter's
lock, and five wake-ups of the event loop, per page. An auditor paging at full speed
paid that on the loop every other room's edits wait on; one function, one hop, now.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from engine.rules.refusals import stored_refusals
from engine.storage.docstore import DocStore, HistoryEntry
from engine.storage.retention import folded_summaries


def history_page(docs: DocStore, room: str, after: int, limit: int, page_bytes: int) -> bytes:
    """The JSON page of `room`'s history after `after` (RoomNotFound if it never was)."""
    entries = docs.history(room, after, limit, page_bytes)
    meta = docs.info(room)
    folded = folded_summaries(docs, room)
    refusals = stored_refusals(docs, room)
    last_seq = meta.last_seq if meta else 0
    next_after = entries[-1].seq if entries else after
    page = {
        "room": room,
        "last_seq": last_seq,
        "next_after": next_after,
        "more": next_after < last_seq,
        "entries": [
            history_json(entry, entry.rejected or refusals.get(entry.seq)) for entry in entries
        ],
        **({"folded": [asdict(summary) for summary in folded]} if folded else {}),
    }
    return json.dumps(page).encode()


def history_json(entry: HistoryEntry, refused: dict[str, Any] | None = None) -> dict[str, Any]:
    """One entry; `rejected` when a rule or Hooks.check undid part of it (the entry
    holds the attempt merged with its undo)."""
    return {
        "seq": entry.seq,
        "ts": entry.ts,
        "user": entry.user,
        "bytes": entry.bytes,
        "clients": list(entry.clients),
        **({"restore_of": entry.restore_of} if entry.restore_of is not None else {}),
        **({"rejected": refused} if refused is not None else {}),
    }
