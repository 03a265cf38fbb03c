"""Building blocks for engine tests: real pycrdt documents producing real updates."""

from __future__ import annotations

from typing import Any

from pycrdt import Array, Doc, Map, Text

from engine.document import RoomDocument


def recording_doc(client_id: int | None = None) -> tuple[Doc[Any], list[bytes]]:
    """A Doc whose every transaction's update is appended to the returned list."""
    doc: Doc[Any] = Doc(client_id=client_id) if client_id is not None else Doc()
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(bytes(event.update)))
    return doc, updates


def content(updates: list[bytes]) -> dict[str, Any]:
    """The visible content of the document the updates build (roots t, a, m), in any
    order (RoomDocument integrates updates that arrived before their dependencies)."""
    room = RoomDocument()
    for update in updates:
        room.apply(update, "storage")
    return snapshot_of(room.doc)


def snapshot_of(doc: Doc[Any]) -> dict[str, Any]:
    return {
        "t": str(doc.get("t", type=Text)),
        "a": doc.get("a", type=Array).to_py(),
        "m": doc.get("m", type=Map).to_py(),
    }


def typing_updates(text: str, client_id: int = 1) -> list[bytes]:
    doc, updates = recording_doc(client_id)
    t = doc.get("t", type=Text)
    for char in text:
        t += char
    return updates
