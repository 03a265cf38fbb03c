"""History pages read from record heads, on memory, LMDB and a real redis-server: the
same page as decoding whole records gives (random logs with runs, the journal, restores,
refusals, long names and big updates), the same page ends under a byte budget, paging
with neither gap nor duplicate, and not one update copied out of the store."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import CorruptRecord
from engine.storage import Append, DocStore, LogStore
from engine.storage.docstore import HistoryEntry
from engine.storage.heads import HEAD_WINDOW, head_from_ends
from engine.storage.records import pack_update

_rooms = itertools.count()

users = st.one_of(st.none(), st.text(max_size=8), st.just("é" * (HEAD_WINDOW + 20)))
refusals = st.one_of(
    st.none(),
    st.dictionaries(
        st.text(max_size=6),
        st.one_of(
            st.text(max_size=6),
            st.integers(-(2**63), 2**64 - 1),
            st.floats(allow_nan=False),
            st.booleans(),
            st.none(),
            st.binary(max_size=6),
            st.lists(st.integers(-5, 5), max_size=3),
        ),
        max_size=4,
    ),
    st.just({"user": "mallory", "reason": "r" * (2 * HEAD_WINDOW)}),  # past a Redis end window
)
sizes = st.one_of(st.integers(0, 40), st.integers(HEAD_WINDOW - 8, 3 * HEAD_WINDOW))
appends = st.tuples(
    st.integers(0, 2),  # which room: the page's room or one of two others (the journal)
    sizes,
    users,
    st.lists(st.integers(0, 2**40), max_size=3).map(tuple),
    st.one_of(st.none(), st.integers(0, 2**33)),
    refusals,
)
batches = st.lists(st.lists(appends, min_size=1, max_size=6), min_size=1, max_size=8)


@pytest.fixture
def log(every_log: LogStore) -> LogStore:
    return every_log


def write_batches(docs: DocStore, room: str, log_batches: list[list[Any]]) -> None:
    """Each batch is one append: a room with several updates in it gets a run, several
    rooms in one append go through the journal (KV stores)."""
    names = [room, f"{room}-b", f"{room}-c"]
    docs.append_many([Append(room, b"s", None, ())])
    for batch in log_batches:
        docs.append_many(
            [
                Append(names[which], bytes([size % 251]) * size, user, clients, restore_of, refused)
                for which, size, user, clients, restore_of, refused in batch
            ]
        )


def _from_whole_records(
    docs: DocStore, room: str, after: int, limit: int, max_bytes: int | None
) -> list[HistoryEntry]:
    """The page as it was built before: whole records decoded, their updates measured."""
    return [
        HistoryEntry(r.seq, r.ts, r.user, len(r.update), r.clients, r.restore_of, r.rejected)
        for r in docs.entries(room, after, None, limit, max_bytes)
    ]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    log_batches=batches,
    after=st.integers(0, 12),
    limit=st.integers(1, 20),
    max_bytes=st.one_of(st.none(), st.integers(1, 6 * HEAD_WINDOW)),
)
def test_a_page_from_heads_is_the_page_from_whole_records(
    log: LogStore, log_batches: list[list[Any]], after: int, limit: int, max_bytes: int | None
) -> None:
    docs = DocStore(log, clock=lambda: 7.25)
    room = f"r{next(_rooms)}"
    write_batches(docs, room, log_batches)
    page = docs.history(room, after, limit, max_bytes)
    assert page == _from_whole_records(docs, room, after, limit, max_bytes)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(log_batches=batches, limit=st.integers(1, 7), max_bytes=st.integers(1, 4 * HEAD_WINDOW))
def test_paging_through_history_has_no_gap_and_no_duplicate(
    log: LogStore, log_batches: list[list[Any]], limit: int, max_bytes: int
) -> None:
    docs = DocStore(log, clock=lambda: 7.25)
    room = f"p{next(_rooms)}"
    write_batches(docs, room, log_batches)
    last = docs.require(room).last_seq
    seen: list[int] = []
    after = 0
    while after < last:
        page = docs.history(room, after, limit, max_bytes)
        assert 1 <= len(page) <= limit
        seen += [entry.seq for entry in page]
        after = page[-1].seq
    assert seen == list(range(1, last + 1))


def test_a_history_page_copies_no_update_out_of_the_store(
    log: LogStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Neither the whole-record read nor a full decode runs for a page of big updates,
    runs and journal entries included: only heads are read."""
    docs = DocStore(log, clock=lambda: 3.0)
    big = b"\x07" * 200_000
    docs.append_many([Append("h", big, "ann", ()), Append("h", big, "bob", (), restore_of=1)])
    refused = {"user": "cy", "reason": "rule: only its author"}
    docs.append_many([Append("h", big, "cy", (), None, refused), Append("o", b"x", "dee", ())])
    expected = _from_whole_records(docs, "h", 0, 10, None)

    def whole_read(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("history read whole records")

    monkeypatch.setattr(type(log), "read", whole_read)
    monkeypatch.setattr("engine.storage.records.unpack", whole_read)
    monkeypatch.setattr("engine.storage.log_values.value_entries", whole_read)
    assert docs.history("h", 0, 10) == expected
    assert [e.bytes for e in expected] == [200_000] * 3
    assert [e.restore_of for e in expected] == [None, 1, None]
    assert [e.rejected for e in expected] == [None, None, refused]


def test_a_damaged_record_among_heads_is_named(log: LogStore) -> None:
    docs = DocStore(log)
    docs.append_many([Append("d", b"u" * 2000, "ann", ())])
    record = bytearray(pack_update(1.0, "bob", (), b"v" * 2000))
    record[0] ^= 0xFF  # its checksum no longer matches (LMDB, memory) ...
    record[40:44] = b"\xff\xff\xff\xff"  # ... and the head is garbage (Redis reads it whole)
    log.append([("d", bytes(record))], 1.0)
    with pytest.raises(CorruptRecord, match="seq 2"):
        docs.history("d")


def test_a_head_whose_fields_lie_past_the_ends_read_is_left_to_a_whole_read() -> None:
    record = pack_update(1.0, "z" * (2 * HEAD_WINDOW), (1,), b"u" * (4 * HEAD_WINDOW))
    assert head_from_ends(record[:HEAD_WINDOW], record[-HEAD_WINDOW:], len(record)) is None
    short = pack_update(1.0, "ann", (1,), b"u" * (4 * HEAD_WINDOW), restore_of=3)
    head = head_from_ends(short[:HEAD_WINDOW], short[-HEAD_WINDOW:], len(short))
    assert head is not None and (head.user, head.size, head.restore_of) == ("ann", 2048, 3)
