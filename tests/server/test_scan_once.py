"""A client update is walked once: the room's guard scans it, the document reuses that scan.

The scan (`scan_update`) is pure Python and was the largest single cost per edit at
typing pace; it ran twice per update. These tests hold the saving and, above all, that
reusing the guard's scan changes nothing the room does with the update.
"""

from __future__ import annotations

from typing import Any

import pytest
from pycrdt import Doc, Text

import engine.document
import server.rooms.guard
from engine.protocol import Saved, Update
from engine.update_scan import UpdateShape, scan_update
from engine.yjs import decode_state_vector
from harness.wire import edit
from tests.server.test_rooms import FakePeer, Rig, rig, settle

__all__ = ["rig"]  # the fixture, shared with test_rooms


@pytest.fixture
def scans(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every update `scan_update` walks, from the guard or the document."""
    walked: list[bytes] = []

    def counting(update: bytes, **kwargs: Any) -> UpdateShape:
        walked.append(update)
        return scan_update(update, **kwargs)

    monkeypatch.setattr(server.rooms.guard, "scan_update", counting)
    monkeypatch.setattr(engine.document, "scan_update", counting)
    return walked


async def test_each_update_is_walked_once_and_applies_as_before(
    rig: Rig, scans: list[bytes]
) -> None:
    room = await rig.registry.acquire("once")
    alice, bob = FakePeer(1), FakePeer(2)
    room.join(alice)
    room.join(bob)
    source: Doc[Any] = Doc()
    first, second = edit(source, "ab"), edit(source, "cd")
    other = edit(Doc(), "xy")
    rig.kv.gate.clear()  # one commit at the disk: the rest gather into one batch
    room.submit(bob, Update(edit(Doc(), "-")))
    await settle(lambda: rig.kv.waiting == 1)
    room.submit(alice, Update(second))  # before its dependency: waits in the document
    room.submit(bob, Update(other))
    room.submit(alice, Update(first))
    rig.kv.gate.set()
    await settle(lambda: sum(isinstance(m, Saved) for m in alice.messages()) == 1)
    assert len(scans) == 4  # one walk per update, not two
    text = str(room.doc.doc.get("t", type=Text))
    assert "abcd" in text and "xy" in text and "-" in text
    assert room.doc.pending == ()
    clocks = decode_state_vector(room.doc.state_vector())
    assert clocks[source.client_id] == 4  # the pending update's clock counted once applied


async def test_a_scan_belongs_to_the_update_object_not_to_equal_bytes(rig: Rig) -> None:
    room = await rig.registry.acquire("identity")
    update = edit(Doc(), "z")
    await room.guard.prepare([(None, update)], room.doc.clocks)
    shape = room.guard.shape_of(update)
    assert shape is not None and shape.ranges
    assert room.guard.shape_of(bytes(bytearray(update))) is None  # equal bytes, other object
    await room.guard.prepare([], room.doc.clocks)  # the next batch forgets the last one's
    assert room.guard.shape_of(update) is None
