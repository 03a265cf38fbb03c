"""`iter_structs` reads the client ids of origins and parents through a small memo of the
ids an update names again and again; the heads must be exactly those read without it,
whatever the ids (one to eight varuint bytes) and however many clients wrote."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycrdt import Array, Doc, Map, Text

from engine import update_scan
from engine.jsonview import root_types
from engine.update_scan import iter_structs

client_ids = st.lists(
    st.one_of(st.integers(1, 127), st.integers(128, 2**14), st.integers(2**14, 2**53 - 1)),
    min_size=1,
    max_size=12,
    unique=True,
)


def _written_by(clients: list[int], seed: int) -> bytes:
    """A room each client edits in turn: array, map and text roots, nested maps."""
    docs: list[Doc[Any]] = [Doc(client_id=c) for c in clients]
    for n in range(2 * len(docs)):
        doc = docs[n % len(docs)]
        doc.apply_update(docs[(n - 1) % len(docs)].get_update())
        items, keyed, text = (
            doc.get("items", type=Array),
            doc.get("keyed", type=Map),
            doc.get("text", type=Text),
        )
        items.insert((seed + n) % (len(items) + 1), Map({"n": n}))
        keyed[f"k{(seed + n) % 3}"] = n
        text.insert((seed * n) % (len(text) + 1), "ab")
        if len(items) > 2 and n % 3 == 0:
            del items[seed % len(items)]
    for doc in docs:
        doc.apply_update(docs[-1].get_update())
    return docs[0].get_update()


@settings(max_examples=30, deadline=None)
@given(client_ids, st.integers(0, 1000))
def test_heads_read_with_the_client_memo_equal_those_read_without(
    clients: list[int], seed: int
) -> None:
    state = _written_by(clients, seed)
    with_memo = list(iter_structs(state))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(update_scan, "_KNOWN_CLIENTS", 0)
        assert list(iter_structs(state)) == with_memo
    assert root_types(state) == {"items": "array", "keyed": "map", "text": "text"}
