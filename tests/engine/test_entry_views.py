"""Change-feed entries decoded from views of the store, on memory, LMDB and a real
redis-server: the same records as decoding whole copies gives (random logs with runs, the
journal, restores, refusals), the same page ends under a byte budget, a damaged record
still named, and on the KV stores no record copied whole before its update is."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import CorruptRecord
from engine.storage import Append, DocStore, LogStore
from engine.storage.docstore import _within
from engine.storage.heads import HEAD_WINDOW
from engine.storage.lmdb_kv import LmdbKV
from engine.storage.records import UpdateRecord, pack_update, unpack
from tests.engine.test_history_heads import batches, write_batches

_rooms = itertools.count()


@pytest.fixture
def log(every_log: LogStore) -> LogStore:
    return every_log


def _from_whole_copies(
    docs: DocStore,
    room: str,
    after: int,
    upto: int | None,
    limit: int | None,
    max_bytes: int | None = None,
) -> list[UpdateRecord]:
    """The records as they were decoded before: each a whole copy, CBOR-decoded, the
    page ended by the same budget over whole records."""
    read = docs.log.read
    pairs: Iterable[tuple[int, bytes]] = read(room, after, upto, limit)
    if max_bytes is not None:
        pairs = _within(
            lambda start, want: read(room, start, upto, want),
            lambda pair: (pair[0], len(pair[1])),
            after,
            limit,
            max_bytes,
        )
    return [UpdateRecord.from_map(unpack(value), seq) for seq, value in pairs]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    log_batches=batches,
    after=st.integers(0, 12),
    upto=st.one_of(st.none(), st.integers(0, 40)),
    limit=st.one_of(st.none(), st.integers(1, 20)),
    max_bytes=st.one_of(st.none(), st.integers(1, 6 * HEAD_WINDOW)),
)
def test_entries_from_views_are_the_records_decoded_whole(
    log: LogStore,
    log_batches: list[list[Any]],
    after: int,
    upto: int | None,
    limit: int | None,
    max_bytes: int | None,
) -> None:
    docs = DocStore(log, clock=lambda: 7.25)
    room = f"e{next(_rooms)}"
    write_batches(docs, room, log_batches)
    page = docs.entries(room, after, upto, limit, max_bytes)
    assert page == _from_whole_copies(docs, room, after, upto, limit, max_bytes)
    for name in (room, f"{room}-b", f"{room}-c"):  # where a room's first run starts
        stored = log.read(name)
        assert log.first_seq(name) == (stored[0][0] if stored else None)
    assert all(type(record.update) is bytes for record in page)


def test_entries_copy_no_record_whole_on_the_kv_stores(
    log: LogStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The update is copied once, out of the store's memory: neither the copying read
    nor a CBOR decode of the record runs (Redis hands whole replies: its read is the one)."""
    docs = DocStore(log, clock=lambda: 3.0)
    big = b"\x07" * 300_000
    refused = {"user": "cy", "reason": "rule: only its author"}
    docs.append_many([Append("f", big, "ann", ()), Append("f", big, "bob", (), restore_of=1)])
    docs.append_many([Append("f", big, "cy", (), None, refused), Append("o", b"x", "dee", ())])
    expected = _from_whole_copies(docs, "f", 0, None, None)

    def whole(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a record was copied or decoded whole")

    monkeypatch.setattr("engine.storage.records.unpack", whole)
    monkeypatch.setattr("engine.storage.record_views.unpack", whole)
    monkeypatch.setattr("engine.storage.log_values.value_entries", whole)
    if hasattr(log, "kv"):
        monkeypatch.setattr(type(log), "read", whole)
    if isinstance(getattr(log, "kv", None), LmdbKV):  # first_seq too reads in place
        monkeypatch.setattr(LmdbKV, "scan", whole)
    assert docs.entries("f", 0) == expected
    assert log.first_seq("f") == 1
    assert docs.entries("f", 1, max_bytes=1) == expected[1:2]


def test_a_damaged_entry_is_named_and_one_past_the_page_is_not_read(log: LogStore) -> None:
    docs = DocStore(log)
    docs.append_many([Append("d", b"u" * 2000, "ann", ())])
    record = bytearray(pack_update(1.0, "bob", (), b"v" * 2000))
    record[0] ^= 0xFF
    log.append([("d", bytes(record))], 1.0)
    assert [r.seq for r in docs.entries("d", 0, limit=1)] == [1]
    assert [r.seq for r in docs.entries("d", 0, upto=1)] == [1]
    with pytest.raises(CorruptRecord, match="seq 2"):
        docs.entries("d", 0)
