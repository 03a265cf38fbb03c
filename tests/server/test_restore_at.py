"""The worker's restore of a target spread over several stored updates (a snapshot and
the log after it): merged once, then restored without walking the merged state again,
unless part of it waits for an update that never came."""

from __future__ import annotations

from typing import Any

from pycrdt import Array, Doc, Map, Text

from engine.document import rebuild
from engine.jsonview import to_json
from server.http.versions import restore_at


def _apply_all(*updates: bytes) -> Doc[Any]:
    doc: Doc[Any] = Doc()
    for update in updates:
        doc.apply_update(update)
    return doc


def _stored_history() -> tuple[Doc[Any], list[bytes]]:
    """A room's stored updates: a snapshot of some maps and text, then two log entries."""
    doc: Doc[Any] = Doc()
    items = doc.get("items", type=Array)
    text = doc.get("t", type=Text)
    with doc.transaction():
        items.extend([Map({"n": i}) for i in range(5)])
        text.insert(0, "hello", {"bold": True})
    stored = [doc.get_update()]
    before = doc.get_state()
    items[1]["n"] = -1
    stored.append(doc.get_update(before))
    before = doc.get_state()
    text.insert(5, " world")
    stored.append(doc.get_update(before))
    return doc, stored


def test_a_target_of_a_snapshot_and_log_entries_restores_exactly() -> None:
    doc, stored = _stored_history()
    with doc.transaction():
        doc.get("items", type=Array)[0]["n"] = 99
        del doc.get("t", type=Text)[0:3]
    now = doc.get_update()
    for seq in (2, 3):
        target = stored[:seq]
        restored = _apply_all(now, restore_at(now, target, None)[0])
        assert to_json(restored.get_update()) == to_json(rebuild(target))
        bold = [a for i, a in restored.get("t", type=Text).diff() if i.startswith("hel")]
        assert bold == [{"bold": True}]


def test_a_target_starting_with_a_whole_snapshot_restores_exactly() -> None:
    """A snapshot stored whole is not walked, alone or with the log after it."""
    doc, stored = _stored_history()
    doc.get("items", type=Array)[3]["n"] = 33
    now = doc.get_update()
    for seq in (1, 3):
        target = stored[:seq]
        restored = _apply_all(now, restore_at(now, target, None, True)[0])
        assert to_json(restored.get_update()) == to_json(rebuild(target))


def test_a_target_with_an_update_still_waiting_restores_what_integrated() -> None:
    """A log entry whose dependency is missing stays pending in the merged target: the
    restore gives the content of what integrated, as the JSON view of that seq shows."""
    _doc, stored = _stored_history()
    other: Doc[Any] = Doc()
    other.apply_update(stored[0])
    other.get("items", type=Array)[0]["n"] = 7
    skipped = other.get_update(_apply_all(stored[0]).get_state())
    before = other.get_state()
    other.get("items", type=Array)[0]["n"] = 8  # overwrites `skipped`, which never arrives
    waiting = other.get_update(before)
    target = [stored[0], waiting]
    now = _apply_all(*stored).get_update()
    restored = _apply_all(now, restore_at(now, target, None)[0])
    assert to_json(restored.get_update()) == to_json(rebuild(target))
    items = to_json(restored.get_update())["items"]
    assert items[0] == {}  # the delete of the old value arrived; its successor waits
    assert items[1:3] == [{"n": 1}, {"n": 2}]
    assert skipped  # the update the waiting one needed
