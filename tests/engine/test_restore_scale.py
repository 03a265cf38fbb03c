"""A restore's cost grows with the room, not with the room squared.

difflib spends a scan of the rest of the sequence on every changed block, so an array
of 20,000 elements with every other one changed used to take minutes to diff; long
sequences are now anchored on their unique elements first. The property: whatever the
anchoring, the edit script turns one sequence into the other.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycrdt import Array, Doc, Map

from engine import textdiff
from engine.jsonview import to_json
from engine.restore import restore_update
from engine.textdiff import opcodes

ELEMENTS = st.one_of(st.integers(0, 6), st.text("ab", max_size=2), st.integers(100, 10**6))


def _applied(a: list[Any], b: list[Any], ops: list[tuple[str, int, int, int, int]]) -> list[Any]:
    """`a` edited by the opcodes (which must cover both sequences in order)."""
    out: list[Any] = []
    at_a = at_b = 0
    for tag, i1, i2, j1, j2 in ops:
        assert (i1, j1) == (at_a, at_b), "opcodes leave a gap"
        out += a[i1:i2] if tag == "equal" else b[j1:j2]
        if tag == "equal":
            assert a[i1:i2] == b[j1:j2]
        at_a, at_b = i2, j2
    assert (at_a, at_b) == (len(a), len(b))
    return out


@settings(max_examples=300, deadline=None)
@given(st.lists(ELEMENTS, max_size=60), st.lists(ELEMENTS, max_size=60), st.integers(0, 40))
def test_anchored_opcodes_turn_one_sequence_into_the_other(
    a: list[Any], b: list[Any], cells: int
) -> None:
    saved = textdiff.SEQUENCE_DIFF_CELLS
    textdiff.SEQUENCE_DIFF_CELLS = cells  # anchor even short sequences
    try:
        assert _applied(a, b, opcodes(a, b)) == b
    finally:
        textdiff.SEQUENCE_DIFF_CELLS = saved


def test_scattered_changes_in_a_long_sequence_diff_in_near_linear_time() -> None:
    a = [("map", i) for i in range(20_000)]
    b = [("map", -i) if i % 2 else item for i, item in enumerate(a)]
    started = time.process_time()
    ops = opcodes(a, b)
    seconds = time.process_time() - started
    assert _applied(a, b, ops) == b
    assert sum(1 for tag, *_ in ops if tag == "replace") == 10_000  # each change in place
    assert seconds < 10.0, f"{seconds:.1f} s of CPU to diff 20,000 elements"


@pytest.mark.timeout(300)
@pytest.mark.parametrize("maps", [5_000, pytest.param(20_000, marks=pytest.mark.slow)])
def test_a_room_of_maps_restores_in_place(maps: int) -> None:
    """Every other map of an array of `maps` changed, then restored: exactly the old
    content, each changed map edited in place (the update stays the size of the
    changes), in seconds of CPU rather than minutes (a quadratic diff took minutes
    at 20,000; 5,000 by default keeps the suite short, 20,000 runs in `slow`)."""
    doc: Doc[Any] = Doc()
    items = doc.get("items", type=Array)
    with doc.transaction():
        for i in range(maps):
            items.append(Map({"n": i, "label": f"item {i}"}))
    past = doc.get_update()
    with doc.transaction():
        for i in range(0, maps, 2):
            items[i]["n"] = -i
    now = doc.get_update()
    started = time.process_time()
    update = restore_update(now, past)
    seconds = time.process_time() - started
    restored: Doc[Any] = Doc()
    restored.apply_update(now)
    restored.apply_update(update)
    assert to_json(restored.get_update()) == to_json(past)
    assert len(update) < len(past) // 2
    assert seconds < 30.0 * maps / 20_000, f"{seconds:.1f} s of CPU to restore {maps} maps"
