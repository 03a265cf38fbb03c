"""How change-feed entries are written: JSON pages and SSE events, byte for byte what
the JSON encoder gives, without running it over the updates (megabytes of base64 that
need no escaping). Updates are base64-encoded `PIECE_RAW_BYTES` at a time by pybase64
(see `base64_pieces`)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pybase64

from engine.storage.record_views import READ_ERRORS, record_view
from engine.storage.records import UpdateRecord

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
    return entry_pieces_of(record.seq, record.ts, record.user, record.update)


def entry_pieces_of(
    seq: int, ts: float, user: str | None, update: bytes | memoryview
) -> Iterator[bytes]:
    """`entry_pieces` of an entry given field by field (its update may be a view)."""
    head = json.dumps({"seq": seq, "ts": ts, "user": user})
    yield head[:-1].encode() + b', "update": "'
    yield from base64_pieces(update)
    yield b'"}'


def encoded_entry(seq: int, record: memoryview) -> bytes | Exception:
    """The entry as a page lists it, encoded straight from a view of its stored record
    (`DocStore.entries_as`): the update is never copied out of the store first, and
    base64 reads it in pieces. Why the record does not read, if it does not."""
    try:
        head, update = record_view(record)
    except READ_ERRORS as exc:
        return exc
    return b"".join(entry_pieces_of(seq, head.ts, head.user, update))


def page_chunks(head: dict[str, Any], entries: list[bytes]) -> list[bytes]:
    """A JSON page: `head` with `"entries": [...]` added, as the chunks to write (the
    entries as `encoded_entry` gave them, between them their separators)."""
    chunks = [json.dumps(head)[:-1].encode() + b', "entries": [']
    for index, entry in enumerate(entries):
        if index:
            chunks.append(b", ")
        chunks.append(entry)
    chunks.append(b"]}")
    return chunks


def base64_pieces(update: bytes | memoryview) -> Iterator[bytes]:
    """The update base64-encoded `PIECE_RAW_BYTES` at a time, by pybase64: the stdlib's
    binascii holds the interpreter's lock for the whole call (2.4 ms a megabyte here),
    and change-feed pages made it the biggest holder of the lock the event loop waits
    for; pybase64's SIMD encoder takes 0.17 ms a megabyte and lets go of the lock on big
    inputs. Pieces keep what a stalled SSE reader holds in the server's buffers small."""
    view = memoryview(update)
    for start in range(0, len(view), PIECE_RAW_BYTES):
        yield pybase64.b64encode(view[start : start + PIECE_RAW_BYTES])


def base64_text(data: bytes) -> str:
    """`base64.b64encode(data).decode()`, in pieces (`base64_pieces`): a trimmed room's
    snapshot is the size of the room, and one encode of it held the lock throughout."""
    return b"".join(base64_pieces(data)).decode("ascii")


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
