"""Our codec against the real y-protocols, lib0 and Yjs (Node, in tests/interop).

`js/vectors.mjs` writes messages, awareness payloads and updates with the reference
implementation; we decode them, re-encode them and compare bytes. `js/decode.mjs` reads
messages we encoded with y-protocols, so both directions are covered. Node's dependencies
come from `npm ci` in tests/interop (scripts/test.sh runs it).
"""

from __future__ import annotations

import json
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Array, Doc, Map, Text

from engine.document import RoomDocument
from engine.errors import ProtocolError, UpdateRejected
from engine.protocol import (
    AwarenessEntry,
    AwarenessUpdate,
    Message,
    PermissionDeniedMessage,
    QueryAwareness,
    Saved,
    SyncStep1,
    SyncStep2,
    Update,
    decode,
    decode_awareness,
    encode,
    encode_awareness,
)
from engine.update_scan import scan_update
from engine.yjs import decode_state_vector
from tests.conftest import require_node

INTEROP_DIR = Path(__file__).resolve().parents[1] / "interop"
NODE_TIMEOUT = 60.0
PREFIX_CHECK_LIMIT = 2000  # bytes; every prefix of a message up to this size is tried
# Node updates that yrs (pycrdt 0.12-0.14) does not decode; scan_update still reads them.
PYCRDT_CANNOT_APPLY = {"xml hooks"}


def _run_node(script: str, stdin: bytes = b"") -> Any:
    """Run one of the interop scripts and parse the JSON it prints."""
    node = require_node()
    result = subprocess.run(
        [node, str(INTEROP_DIR / "js" / script)],
        input=stdin,
        capture_output=True,
        timeout=NODE_TIMEOUT,
        check=False,
        cwd=INTEROP_DIR,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return json.loads(result.stdout)


@cache
def _vectors() -> dict[str, list[dict[str, Any]]]:
    vectors: dict[str, list[dict[str, Any]]] = _run_node("vectors.mjs")
    return vectors


def _expected_message(expect: dict[str, Any]) -> Message:
    kind = expect["type"]
    payload = bytes.fromhex(expect.get("payload", ""))
    if kind == "sync_step1":
        return SyncStep1(payload)
    if kind == "sync_step2":
        return SyncStep2(payload)
    if kind == "update":
        return Update(payload)
    if kind == "awareness":
        return AwarenessUpdate(payload)
    if kind == "permission_denied":
        return PermissionDeniedMessage(expect["reason"])
    if kind == "query_awareness":
        return QueryAwareness()
    assert kind == "saved", kind
    return Saved(int(expect["count"]), int(expect["seq"]))


def test_node_messages_decode_to_the_expected_typed_message() -> None:
    vectors = _vectors()["messages"]
    assert len(vectors) >= 15
    wrong = [
        (vector["name"], decoded)
        for vector in vectors
        if (decoded := decode(bytes.fromhex(vector["hex"]))) != _expected_message(vector["expect"])
    ]
    assert wrong == []


def test_encoding_a_decoded_node_message_gives_identical_bytes() -> None:
    wrong = [
        vector["name"]
        for vector in _vectors()["messages"]
        if encode(decode(bytes.fromhex(vector["hex"]))).hex() != vector["hex"]
    ]
    assert wrong == []


def test_every_truncated_node_message_raises_protocol_error() -> None:
    checked = 0
    for vector in _vectors()["messages"]:
        data = bytes.fromhex(vector["hex"])
        if len(data) > PREFIX_CHECK_LIMIT:
            continue
        for end in range(len(data)):
            with pytest.raises(ProtocolError):
                decode(data[:end])
            checked += 1
    assert checked > 100


def test_node_sync_step2_applies_to_the_same_content_in_pycrdt() -> None:
    vector = next(v for v in _vectors()["messages"] if "doc" in v["expect"])
    message = decode(bytes.fromhex(vector["hex"]))
    assert isinstance(message, SyncStep2)
    room = RoomDocument()
    clients = room.apply(message.update)
    assert sorted(clients) == [1001, 2002]
    doc = room.doc
    content = {
        "text": str(doc.get("text", type=Text)),
        "list": doc.get("list", type=Array).to_py(),
        "map": doc.get("map", type=Map).to_py(),
    }
    assert content == vector["expect"]["doc"]


def test_node_awareness_payloads_decode_to_lib0_entries_and_encode_identically() -> None:
    vectors = _vectors()["awareness"]
    assert len(vectors) >= 5
    for vector in vectors:
        payload = bytes.fromhex(vector["hex"])
        entries = decode_awareness(payload)
        expected = [
            AwarenessEntry(int(e["client_id"]), int(e["clock"]), e["state_json"])
            for e in vector["entries"]
        ]
        assert entries == expected, vector["name"]
        assert encode_awareness(entries) == payload, vector["name"]


def test_a_removed_awareness_state_is_reported_as_removed() -> None:
    vector = next(v for v in _vectors()["awareness"] if "removed" in v["name"])
    (entry,) = decode_awareness(bytes.fromhex(vector["hex"]))
    assert entry.removed
    assert entry.client_id == 2**32 - 1


def test_scan_update_reads_every_kind_of_node_update() -> None:
    vectors = _vectors()["updates"]
    assert len(vectors) >= 10
    for vector in vectors:
        shape = scan_update(bytes.fromhex(vector["hex"]))
        ranges = {int(client): tuple(r) for client, r in vector["ranges"].items()}
        assert shape.ranges == ranges, vector["name"]
        assert sorted(shape.clients) == sorted(ranges), vector["name"]
        assert shape.deletes == vector["deletes"], vector["name"]
        assert shape.gaps == vector["skips"], vector["name"]


def test_room_document_accepts_every_kind_of_node_update() -> None:
    for vector in _vectors()["updates"]:
        if vector["name"] in PYCRDT_CANNOT_APPLY:
            continue
        room = RoomDocument()
        clients = room.apply(bytes.fromhex(vector["hex"]))
        assert sorted(clients) == sorted(int(c) for c in vector["ranges"]), vector["name"]


def test_an_update_pycrdt_cannot_apply_is_rejected_and_leaves_the_room_unchanged() -> None:
    """Yrs does not decode the Yjs XmlHook type (type ref 5 with its hook name); the room
    must refuse such an update cleanly rather than half-apply it."""
    (vector,) = [v for v in _vectors()["updates"] if v["name"] in PYCRDT_CANNOT_APPLY]
    room = RoomDocument()
    before = room.encode_state()
    with pytest.raises(UpdateRejected):
        room.apply(bytes.fromhex(vector["hex"]))
    assert room.encode_state() == before


# --------------------------------------------------------------------------- Python -> Node


def _python_doc() -> tuple[Doc[Any], bytes, bytes]:
    """A pycrdt doc, its full update, and an incremental update made after it."""
    doc: Doc[Any] = Doc()
    doc["text"] = text = Text()
    doc["list"] = items = Array[Any]()
    doc["map"] = entries = Map[Any]()
    text += "grüße 🌍"
    items.extend(["a", 2, {"nested": [True, None]}])
    entries["k"] = "välue"
    full = bytes(doc.get_update())
    before = bytes(doc.get_state())
    text += " ✓"
    return doc, full, bytes(doc.get_update(before))


def test_python_encoded_messages_decode_with_y_protocols() -> None:
    doc, full, incremental = _python_doc()
    state_json = json.dumps({"user": {"name": "Zoë 🎉", "color": "#f80"}, "typing": True})
    entries = [
        AwarenessEntry(7, 3, state_json),
        AwarenessEntry(2**32 - 1, 2**53 - 1, json.dumps({"note": 'tab\t "quote" 𝄞'})),
    ]
    messages: list[Message] = [
        SyncStep1(bytes(doc.get_state())),
        SyncStep2(full),
        Update(incremental),
        AwarenessUpdate(encode_awareness(entries)),
        PermissionDeniedMessage("schreibgeschützt 🔒"),
        QueryAwareness(),
        Saved(0, 0),
        Saved(2**53 - 1, 2**53),
    ]
    stdin = json.dumps(
        {
            "messages": [encode(m).hex() for m in messages],
            "roots": {"text": "text", "list": "array", "map": "map"},
        }
    ).encode()
    step1, step2, update, awareness, denied, query, saved0, saved_big = _run_node(
        "decode.mjs", stdin
    )
    for decoded in (step1, step2, update, awareness, denied, query, saved0, saved_big):
        assert decoded["rest"] == 0, decoded
    assert step1["type"] == "sync_step1"
    clocks = decode_state_vector(bytes(doc.get_state()))
    assert step1["state_vector"] == {str(client): clock for client, clock in clocks.items()}
    assert step2["type"] == "sync_step2"
    full_content = {"text": "grüße 🌍", "list": ["a", 2, {"nested": [True, None]}]}
    assert step2["doc"] == {**full_content, "map": {"k": "välue"}}
    assert update["type"] == "update"
    assert update["doc"] == {**full_content, "text": "grüße 🌍 ✓", "map": {"k": "välue"}}
    assert awareness["entries"] == [
        {"client_id": str(e.client_id), "clock": str(e.clock), "state_json": e.state_json}
        for e in entries
    ]
    assert awareness["states"] == {str(e.client_id): json.loads(e.state_json) for e in entries}
    assert denied == {"type": "permission_denied", "reason": "schreibgeschützt 🔒", "rest": 0}
    assert query == {"type": "query_awareness", "rest": 0}
    assert saved0 == {"type": "saved", "count": "0", "seq": "0", "rest": 0}
    assert saved_big == {
        "type": "saved",
        "count": str(2**53 - 1),
        "seq": str(2**53),
        "rest": 0,
    }
