"""Hypothesis: convergence under any delivery, replay equals live, compaction keeps content."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pycrdt import Array, Doc, Map, Text

from engine.document import RoomDocument, rebuild
from engine.storage import CompactionPolicy, DocStore, KVLogStore, MemoryKV
from engine.yjs import decode_state_vector
from tests.engine.helpers import content, recording_doc, snapshot_of

# An edit: (peer, kind, position seed, value)
edits = st.lists(
    st.tuples(
        st.integers(0, 2),
        st.sampled_from(["text", "delete", "array", "map"]),
        st.integers(0, 1000),
        st.text(alphabet="abcxyz", min_size=1, max_size=3),
    ),
    min_size=1,
    max_size=25,
)


def make_updates(
    script: list[tuple[int, str, int, str]], sync_every: int = 4
) -> tuple[list[bytes], dict[str, Any]]:
    """Three peers edit concurrently, syncing now and then; returns every update made
    (in creation order) and the content all peers agree on after a full sync."""
    peers = [recording_doc(client_id=i + 1) for i in range(3)]
    made: list[bytes] = []
    for step, (who, kind, seed, value) in enumerate(script):
        doc, updates = peers[who]
        before = len(updates)
        _edit(doc, kind, seed, value)
        made += updates[before:]
        if step % sync_every == sync_every - 1:
            for doc_a, _ in peers:
                for doc_b, _ in peers:
                    if doc_a is not doc_b:
                        doc_b.apply_update(doc_a.get_update(doc_b.get_state()))
    final: Doc[Any] = Doc()
    for update in made:
        final.apply_update(update)
    return made, snapshot_of(final)


def _edit(doc: Doc[Any], kind: str, seed: int, value: str) -> None:
    text = doc.get("t", type=Text)
    if kind == "text":
        text.insert(seed % (len(text) + 1), value)
    elif kind == "delete" and len(text):
        start = seed % len(text)
        del text[start : start + 1]
    elif kind == "array":
        doc.get("a", type=Array).append(value)
    elif kind == "map":
        doc.get("m", type=Map)[value] = seed


@given(edits, st.randoms(use_true_random=False), st.integers(0, 3))
@settings(max_examples=60, deadline=None)
def test_peers_converge_under_any_order_with_duplicates(
    script: list[tuple[int, str, int, str]], rng: Any, duplicates: int
) -> None:
    updates, expected = make_updates(script)
    assume(updates)
    replicas = []
    for _ in range(3):
        delivery = updates + [rng.choice(updates) for _ in range(duplicates)]
        rng.shuffle(delivery)
        room = RoomDocument()
        for update in delivery:
            room.apply(update)
        replicas.append(room)
    for room in replicas:
        assert snapshot_of(room.doc) == expected
    vectors = [decode_state_vector(r.state_vector()) for r in replicas]
    assert vectors[0] and all(vector == vectors[0] for vector in vectors)


@given(edits, st.randoms(use_true_random=False), st.lists(st.booleans(), max_size=40))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_load_after_appends_and_compactions_equals_the_live_document(
    script: list[tuple[int, str, int, str]], rng: Any, compact_after: list[bool]
) -> None:
    updates, expected = make_updates(script)
    rng.shuffle(updates)  # out of order: some updates wait for their dependencies
    store = DocStore(
        KVLogStore(MemoryKV()),
        rebuild=rebuild,
        policy=CompactionPolicy(every_updates=3, min_bytes=10**9),
    )
    live = RoomDocument()
    for i, update in enumerate(updates):
        live.apply(update)
        store.append("room", update)
        if i < len(compact_after) and compact_after[i]:
            store.compact("room", force=True)
    assert content(store.load("room").updates) == snapshot_of(live.doc) == expected


@given(edits)
@settings(max_examples=40, deadline=None)
def test_state_at_seq_equals_the_document_of_the_first_seq_updates(
    script: list[tuple[int, str, int, str]],
) -> None:
    updates, _ = make_updates(script)
    assume(updates)
    store = DocStore(
        KVLogStore(MemoryKV()), rebuild=rebuild, policy=CompactionPolicy(every_updates=4)
    )
    for update in updates:
        store.append("room", update)
        store.compact("room")
    for seq in range(0, len(updates) + 1, max(1, len(updates) // 5)):
        assert content([store.state_at("room", seq)]) == content(updates[:seq])
