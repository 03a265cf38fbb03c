"""How change-feed entries are written: JSON pages and SSE events, byte for byte what
the JSON encoder gives, without running it over the updates (megabytes of base64 that
need no escaping). Updates are base64-encoded `PIECE_RAW_BYTES` at a time, so a thread
encoding a page hands the interpreter's lock back to the event loop between pieces."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

from engine.storage.records import UpdateRecord

ENCODE_BYTES = 256 * 1024  # of updates, JSON-encoded at a time off the event loop
PIECE_RAW_BYTES = 48 * 1024  # of an update, base64-encoded at a time (a multiple of 3)


def entry_json(record: UpdateRecord) -> dict[str, Any]:
    return {
        "seq": record.seq,
        "ts": record.ts,
        "user": record.user,
        "update": base64.b64encode(record.update).decode(),
    }


def entry_bytes(record: UpdateRecord) -> bytes:
    """`json.dumps(entry_json(record))`, encoded, without running the JSON encoder over
    the update: base64 needs no escaping, so its bytes go in as they are. A megabyte
    update costs one base64 pass and one copy rather than three more passes."""
    return b"".join(entry_pieces(record))


def entry_pieces(record: UpdateRecord) -> Iterator[bytes]:
    """`entry_bytes` in pieces, the update base64-encoded `PIECE_RAW_BYTES` at a time."""
    head = json.dumps({"seq": record.seq, "ts": record.ts, "user": record.user})
    yield head[:-1].encode() + b', "update": "'
    yield from base64_pieces(record.update)
    yield b'"}'


def entry_size(record: UpdateRecord) -> int:
    """`len(entry_bytes(record))`, from the update's length (base64: 4 bytes per 3)."""
    head = json.dumps({"seq": record.seq, "ts": record.ts, "user": record.user})
    return len(head.encode()) - 1 + len(b', "update": "') + 4 * -(-len(record.update) // 3) + 2


def base64_pieces(update: bytes) -> Iterator[bytes]:
    """The update base64-encoded `PIECE_RAW_BYTES` at a time. One call over a megabyte
    holds the interpreter's lock for milliseconds (base64 never lets go of it), so a page
    encoded in a thread held the event loop, and every room's edits, as long; between
    pieces the loop gets the lock back within the switch interval."""
    view = memoryview(update)
    for start in range(0, len(view), PIECE_RAW_BYTES):
        yield base64.b64encode(view[start : start + PIECE_RAW_BYTES])


def base64_text(data: bytes) -> str:
    """`base64.b64encode(data).decode()`, in pieces (`base64_pieces`): a trimmed room's
    snapshot is the size of the room, and one encode of it held the lock throughout."""
    return b"".join(base64_pieces(data)).decode("ascii")


def groups(entries: list[UpdateRecord], max_bytes: int) -> Iterator[list[UpdateRecord]]:
    """Consecutive runs of entries with about `max_bytes` of updates each."""
    group: list[UpdateRecord] = []
    size = 0
    for record in entries:
        group.append(record)
        size += len(record.update)
        if size >= max_bytes:
            yield group
            group, size = [], 0
    if group:
        yield group


def encode_entries(entries: list[UpdateRecord], first: bool = True) -> bytes:
    """The entries as a page lists them, after a separator unless `first`: the pieces
    are joined here, in the thread, so the event loop copies no megabytes to send them,
    and joined once (an entry joined on its own and then again with its separators was
    two more copies of each megabyte)."""
    pieces: list[bytes] = []
    for index, record in enumerate(entries):
        if index or not first:
            pieces.append(b", ")
        pieces += entry_pieces(record)
    return b"".join(pieces)


def entries_size(entries: list[UpdateRecord]) -> int:
    """The bytes `encode_entries` gives for all of `entries`, without encoding them: a
    page then goes out with its Content-Length rather than in HTTP chunks, which aiohttp
    (on Python before 3.12.9) joins into one more copy of each on the event loop."""
    return sum(entry_size(record) for record in entries) + 2 * max(len(entries) - 1, 0)


def sse_event(kind: str, data: dict[str, Any], event_id: int | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data)}\n\n".encode()


def sse_update(record: UpdateRecord) -> bytes:
    """One log entry as the SSE event every subscriber of the room receives (what
    `sse_event("update", entry_json(record), record.seq)` writes, see `entry_bytes`)."""
    return b"".join(sse_update_pieces(record))


def sse_update_pieces(record: UpdateRecord) -> Iterator[bytes]:
    """`sse_update` in pieces (`PIECE_RAW_BYTES` of the update each), base64-encoded as they are
    asked for: a catch-up writes one piece at a time, so a reader that stalls holds one
    piece in the server's buffers, not a whole encoded megabyte entry."""
    head = json.dumps({"seq": record.seq, "ts": record.ts, "user": record.user})
    yield f'id: {record.seq}\nevent: update\ndata: {head[:-1]}, "update": "'.encode()
    yield from base64_pieces(record.update)
    yield b'"}\n\n'
