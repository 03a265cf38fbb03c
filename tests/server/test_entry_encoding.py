"""Change-feed entries are written without running the JSON encoder over their updates
(megabytes of base64 that need no escaping); the bytes must be exactly what encoding the
whole entry gives, for pages and for SSE events alike."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.storage.records import RecordError, UpdateRecord, pack_update
from server.http.feed_encoding import (
    encoded_entry,
    entry_bytes,
    entry_json,
    page_chunks,
    sse_event,
    sse_update,
)

RECORDS = st.builds(
    UpdateRecord,
    seq=st.integers(1, 2**53),
    ts=st.floats(0, 4e9),
    user=st.none() | st.text(max_size=20),  # quotes, backslashes, controls, non-ASCII
    clients=st.just((1,)),
    update=st.binary(max_size=2000),
)


@settings(max_examples=300, deadline=None)
@given(RECORDS)
def test_an_entry_is_written_as_the_json_encoder_writes_it(record: UpdateRecord) -> None:
    assert entry_bytes(record) == json.dumps(entry_json(record)).encode()
    assert json.loads(entry_bytes(record)) == entry_json(record)


@settings(max_examples=300, deadline=None)
@given(RECORDS)
def test_an_update_event_is_written_as_anyevent(record: UpdateRecord) -> None:
    assert sse_update(record) == sse_event("update", entry_json(record), record.seq)


@settings(max_examples=100, deadline=None)
@given(RECORDS, st.integers(1, 200))
def test_an_event_written_in_pieces_is_the_sameevent(record: UpdateRecord, piece: int) -> None:
    """Pieces of any size that is a multiple of 3 bytes (base64 needs no padding inside)."""
    from server.http import feed_encoding as changes

    saved = changes.PIECE_RAW_BYTES
    changes.PIECE_RAW_BYTES = 3 * piece
    try:
        pieces = list(changes.sse_update_pieces(record))
    finally:
        changes.PIECE_RAW_BYTES = saved
    assert b"".join(pieces) == sse_event("update", entry_json(record), record.seq)
    assert all(len(p) <= 4 * piece for p in pieces[1:-1])


@settings(max_examples=100, deadline=None)
@given(RECORDS, st.integers(1, 200))
def test_a_page_entry_encoded_in_pieces_is_the_same_entry(record: UpdateRecord, piece: int) -> None:
    """A page's entry is base64-encoded a piece at a time too (one call over a megabyte
    holds the interpreter's lock, and so the event loop, for milliseconds)."""
    from server.http import feed_encoding as changes

    saved = changes.PIECE_RAW_BYTES
    changes.PIECE_RAW_BYTES = 3 * piece
    try:
        encoded = entry_bytes(record)
        pieces = list(changes.base64_pieces(record.update))
    finally:
        changes.PIECE_RAW_BYTES = saved
    assert encoded == json.dumps(entry_json(record)).encode()
    assert all(len(p) <= 4 * piece for p in pieces)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(RECORDS, max_size=5), st.dictionaries(st.text(max_size=5), st.integers(), min_size=1)
)
def test_a_page_of_entries_encoded_from_stored_records_is_the_json_of_the_page(
    records: list[UpdateRecord], head: dict[str, int]
) -> None:
    """A page's entries are encoded straight from their stored records (views of the
    store): the page's bytes must be what the JSON encoder writes for the whole page,
    and its Content-Length is the sum of its chunks."""
    stored = [
        pack_update(record.ts, record.user, record.clients, record.update) for record in records
    ]
    entries = [
        encoded_entry(r.seq, memoryview(value)) for r, value in zip(records, stored, strict=True)
    ]
    assert all(isinstance(entry, bytes) for entry in entries)
    chunks = page_chunks(head, [entry for entry in entries if isinstance(entry, bytes)])
    page = {**head, "entries": [entry_json(record) for record in records]}
    assert b"".join(chunks) == json.dumps(page).encode()


def test_a_damaged_record_is_not_encoded() -> None:
    value = bytearray(pack_update(1.0, "ann", (1,), b"u" * 100))
    value[-1] ^= 1
    assert isinstance(encoded_entry(1, memoryview(value)), RecordError)
