"""A change-feed page read, and for JSON encoded, in one trip to a reading thread.

Each hand-over of a result from a reading thread to the event loop wakes the loop while
the thread still holds the interpreter's lock (`call_soon_threadsafe`): under a paging
flood that wake-up was a fifth of all the time the lock was held. A JSON page used to
take a dozen of them (the room's counters, where the log starts, the entries, their
length, every group of them encoded); here it takes one, and its entries are encoded
straight from views of the store's memory (no update copied out first). An SSE
catch-up's first page is read in one trip as well (its entries are written one by one,
so they stay records).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from engine.errors import ProtocolError
from engine.storage.docstore import DocStore
from engine.storage.record_views import record_or_error
from engine.storage.records import UpdateRecord
from server.http.feed_encoding import base64_text, encoded_entry

PAGE = 1000
TRIM_RETRIES = 8  # first pages read again because a trim landed between snapshot and log

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class JsonPage:
    """What a JSON page holds, read in the thread; the event loop adds the position.

    Args:
        entries: (seq, the entry as the page lists it), in order.
        last_seq: the room's last seq, read after the entries.
    """

    snapshot: dict[str, Any] | None
    entries: list[tuple[int, bytes]]
    last_seq: int


def read_json_page(
    docs: DocStore, room: str, after: int, upto: int | None, page_bytes: int
) -> JsonPage:
    """The page after `after` (entries up to `upto`, the seq known durable).

    Raises:
        RoomNotFound: no such room. ProtocolError: `after` is past its last seq.
    """
    check_after(docs, room, after)
    snapshot, entries = first_page(docs, room, after, upto, page_bytes, encoded_entry)
    return JsonPage(snapshot, entries, docs.require(room).last_seq)


def check_after(docs: DocStore, room: str, after: int) -> None:
    """RoomNotFound for a room never written; ProtocolError past its last seq."""
    last_seq = docs.require(room).last_seq
    if after > last_seq:
        raise ProtocolError(0, f"after={after} is beyond the room's last seq {last_seq}")


def first_records(
    docs: DocStore, room: str, after: int, upto: int | None, max_bytes: int
) -> tuple[dict[str, Any] | None, list[UpdateRecord]]:
    """`first_page` with the entries decoded (an SSE catch-up writes them one by one)."""
    snapshot, entries = first_page(docs, room, after, upto, max_bytes, record_or_error)
    return snapshot, [record for _, record in entries]


def first_page(
    docs: DocStore,
    room: str,
    after: int,
    upto: int | None,
    max_bytes: int,
    take: Callable[[int, memoryview], T | Exception],
) -> tuple[dict[str, Any] | None, list[tuple[int, T]]]:
    """The snapshot to start from (None: the log still continues `after`) and the
    entries that follow it, each as `take` gives it. A trim landing between the two
    reads leaves the entries starting past it; they are read again, from the snapshot
    that trim wrote."""
    for _ in range(TRIM_RETRIES):
        snapshot = snapshot_if_trimmed(docs, room, after)
        start = snapshot["seq"] if snapshot is not None else after
        entries = docs.entries_as(room, take, start, upto, PAGE, max_bytes)
        if not entries or entries[0][0] == start + 1:
            break
    return snapshot, entries


def snapshot_if_trimmed(docs: DocStore, room: str, after: int) -> dict[str, Any] | None:
    """The snapshot to start from when the log no longer holds the entry after `after`
    (its state base64-encoded in pieces: a snapshot is the size of its room)."""
    first = docs.log.first_seq(room)
    if first is not None and first <= after + 1:
        return None
    loaded = docs.load(room)
    if loaded.snapshot_seq <= after:
        return None
    return {"seq": loaded.snapshot_seq, "state": base64_text(loaded.updates[0])}
