"""History retention on every log store (memory, LMDB, a real redis-server): folding
entries older than the window keeps time travel exact inside it, refuses it before it
naming the oldest position, keeps named versions restorable and summarises what went."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycrdt import Text

from engine.document import rebuild
from engine.errors import HistoryFolded
from engine.storage import DocStore, KVLogStore, LmdbKV, LogStore, MemoryKV, Retention
from engine.storage.docstore import kept_key
from engine.storage.redis_log import RedisLogStore
from engine.storage.retention import (
    HistoryWindow,
    apply_fold,
    fold_may_be_due,
    fold_room,
    folded_summaries,
    plan_fold,
)
from engine.storage.tools import verify
from tests.engine.helpers import content, recording_doc
from tests.engine.test_docstore import FakeClock

WINDOWED = Retention(history_seconds=50.0)


@pytest.fixture(params=["memory", "lmdb", "redis"])
def log_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LogStore]:
    log: LogStore
    if request.param == "memory":
        log = KVLogStore(MemoryKV())
    elif request.param == "lmdb":
        log = KVLogStore(LmdbKV(tmp_path / "kv"))
    else:
        log = RedisLogStore(request.getfixturevalue("redis_server").url)
    yield log
    log.close()


def store_on(log: LogStore, retention: Retention = WINDOWED) -> tuple[DocStore, FakeClock]:
    clock = FakeClock()
    return DocStore(log, rebuild=rebuild, clock=clock, retention=retention), clock


def type_into(store: DocStore, room: str, text: str, users: tuple[str, ...]) -> list[bytes]:
    doc, updates = recording_doc(1)
    t = doc.get("t", type=Text)
    for i, char in enumerate(text):
        t += char
        store.append(room, updates[-1], users[i % len(users)])
    return updates


def test_fold_keeps_time_travel_inside_the_window_and_refuses_before(log_store: LogStore) -> None:
    store, clock = store_on(log_store)
    updates = type_into(store, "notes", "a" * 200, ("ann", "bob"))
    store.set_meta("notes", "label:early", b"20")
    store.compact("notes", force=True)  # a snapshot at 200, newer than the edge

    summary = fold_room(store, "notes", HistoryWindow(seconds=50.0), clock.now)

    assert summary is not None
    edge = summary.upto
    assert edge == 150  # one entry a second: the newest 50 stay
    assert (summary.from_seq, summary.count, summary.users) == (1, 150, {"ann": 75, "bob": 75})
    assert summary.first_ts < summary.last_ts and summary.size > 0
    assert store.oldest_position("notes") == edge
    assert folded_summaries(store, "notes") == [summary]
    for seq in (edge, edge + 1, 180, 200):
        assert content([store.state_at("notes", seq)]) == content(updates[:seq])
    with pytest.raises(HistoryFolded) as refused:
        store.state_at("notes", edge - 1)
    assert refused.value.oldest == edge and f"seq {edge}" in str(refused.value)
    assert content([store.state_at("notes", 20)]) == content(updates[:20]), "named version"
    assert content(store.load("notes").updates) == content(updates)
    assert [h.seq for h in store.history("notes", limit=1000)][0] > edge - 50
    report = verify(store)
    assert report.ok, report.problems


def test_nothing_is_folded_inside_the_window_or_below_the_minimum(log_store: LogStore) -> None:
    store, clock = store_on(log_store)
    type_into(store, "notes", "a" * 60, ("ann",))
    assert fold_room(store, "notes", HistoryWindow(seconds=50.0), clock.now) is None
    assert fold_room(store, "notes", HistoryWindow(seconds=1000.0), clock.now) is None
    assert store.oldest_position("notes") == 0


def test_a_byte_window_levels_the_log_off_on_an_insert_delete_loop(log_store: LogStore) -> None:
    store, clock = store_on(log_store, Retention(history_bytes=20_000))
    doc, updates = recording_doc(1)
    t = doc.get("t", type=Text)
    window = HistoryWindow(bytes=20_000, min_entries=50)
    kept_sizes = []
    for _round in range(8):
        for _ in range(100):
            t.insert(0, "cell")
            store.append("nb", updates[-1], "ann")
            del t[0:4]
            store.append("nb", updates[-1], "ann")
        fold_room(store, "nb", window, clock.now)
        kept_sizes.append(sum(len(v) for _, v in store.log.read("nb")))
    assert max(kept_sizes) <= 20_000 + 2_000, kept_sizes
    assert len(store.log.snapshots("nb")) <= 2
    assert content(store.load("nb").updates) == content(updates)


def test_a_fold_interrupted_before_its_trim_leaves_a_whole_store(log_store: LogStore) -> None:
    """The writes before the atomic snapshot+trim (kept versions, summary) happen, then
    the process dies: the store is whole and the next fold replaces the summary."""
    store, clock = store_on(log_store)
    updates = type_into(store, "notes", "b" * 200, ("ann",))
    store.set_meta("notes", "label:v1", b"10")
    plan = plan_fold(store, "notes", HistoryWindow(seconds=50.0), clock.now)
    assert plan is not None
    for seq, record in plan.kept.items():
        store.set_meta("notes", kept_key(seq), record)
    store.set_meta("notes", f"folded:{plan.snapshot.seq:020d}", plan.summary.encode())
    # ... killed here
    assert verify(store).ok
    assert folded_summaries(store, "notes") == [], "a fold that never ran is not reported"
    assert content(store.load("notes").updates) == content(updates)
    type_into(store, "notes", "c" * 30, ("bob",))
    later = plan_fold(store, "notes", HistoryWindow(seconds=50.0), clock.now)
    assert later is not None and apply_fold(store, later)
    assert [s.upto for s in folded_summaries(store, "notes")] == [later.snapshot.seq]
    assert content([store.state_at("notes", 10)]) == content(updates[:10])
    assert verify(store).ok


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rounds=st.lists(
        st.tuples(st.integers(1, 40), st.integers(0, 60), st.booleans()), min_size=1, max_size=6
    )
)
def test_any_sequence_of_edits_and_folds_keeps_the_room_and_the_window(
    rounds: list[tuple[int, int, bool]],
) -> None:
    """Whatever the edits and folds: the room loads whole, every state from the oldest
    position on is exact, and verify accepts the store."""
    store, clock = store_on(KVLogStore(MemoryKV()))
    doc, updates = recording_doc(3)
    t = doc.get("t", type=Text)
    for edits, window_seconds, deleting in rounds:
        for i in range(edits):
            if deleting and len(str(t)) > 2:
                del t[0:2]
            else:
                t.insert(i % (len(str(t)) + 1), "xy")
            store.append("r", updates[-1], f"u{i % 3}")
        fold_room(store, "r", HistoryWindow(seconds=float(window_seconds), min_entries=1),
                  clock.now)  # fmt: skip
    assert content(store.load("r").updates) == content(updates)
    oldest = store.oldest_position("r")
    for seq in range(max(oldest, 1), len(updates) + 1, 7):
        assert content([store.state_at("r", seq)]) == content(updates[:seq])
    assert verify(store).ok
    total = sum(s.count for s in folded_summaries(store, "r"))
    assert total >= oldest - 1 if oldest else total == 0


def test_the_cheap_check_agrees_with_the_plan(log_store: LogStore) -> None:
    store, clock = store_on(log_store)
    type_into(store, "notes", "a" * 200, ("ann",))
    window = HistoryWindow(seconds=50.0)
    assert fold_may_be_due(store, "notes", window, clock.now, None)
    assert not fold_may_be_due(store, "notes", HistoryWindow(seconds=500.0), clock.now, None)
    summary = fold_room(store, "notes", window, clock.now)
    assert summary is not None
    assert not fold_may_be_due(store, "notes", window, clock.now, None), "nothing left"
    assert plan_fold(store, "notes", window, clock.now) is None
