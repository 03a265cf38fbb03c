"""The worker's JSON view of a seq spread over several stored updates: merged once, and a
merge that integrated whole is loaded without walking it a second time; the view is the
same either way."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycrdt import Array, Doc, get_state, get_update

from engine import live_doc
from engine.document import rebuild_whole
from engine.jsonview import to_json
from engine.update_scan import UpdateShape, scan_update
from server.http.versions import json_text_at
from tests.engine.test_restore import Op, _history, op_strategy


def _stored(states: list[bytes]) -> list[bytes]:
    """The updates a room stores for `states`: the first whole, then each step's delta."""
    return [states[0]] + [
        get_update(state, get_state(before))
        for before, state in zip(states, states[1:], strict=False)
    ]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(op_strategy, min_size=1, max_size=16))
def test_the_view_of_merged_updates_is_the_view_of_the_state_they_make(ops: list[Op]) -> None:
    states = _history(ops)
    stored = _stored(states)
    for seq in range(1, len(stored) + 1):
        view = json.loads(json_text_at(stored[:seq], None))
        assert view == to_json(states[seq - 1])


def test_a_merge_that_integrated_whole_is_walked_once(monkeypatch: pytest.MonkeyPatch) -> None:
    doc: Doc[Any] = Doc()
    items = doc.get("items", type=Array)
    items.extend([1, 2, 3])
    stored = [doc.get_update()]
    before = doc.get_state()
    items.append(4)
    stored.append(doc.get_update(before))
    state, whole = rebuild_whole(stored)
    assert whole
    scans: list[bytes] = []

    def counted_scan(update: bytes) -> UpdateShape:
        scans.append(update)
        return scan_update(update)

    monkeypatch.setattr(live_doc, "scan_update", counted_scan)
    assert to_json(state, whole=True) == to_json(state) == {"items": [1, 2, 3, 4]}
    assert scans == [state]  # only the load that did not know it was whole


def test_a_merge_with_an_update_still_waiting_shows_what_integrated() -> None:
    doc: Doc[Any] = Doc()
    items = doc.get("items", type=Array)
    items.extend([1, 2])
    first = doc.get_update()
    before = doc.get_state()
    items.append(3)
    missing = doc.get_update(before)
    before = doc.get_state()
    items.append(4)
    waiting = doc.get_update(before)  # needs `missing`, which is not stored
    assert rebuild_whole([first, waiting])[1] is False
    assert json.loads(json_text_at([first, waiting], None)) == {"items": [1, 2]}
    assert missing
