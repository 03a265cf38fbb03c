"""RoomDocument: validation, quotas and origins."""

from __future__ import annotations

import pytest
from pycrdt import Array, Doc, Text

from engine.document import RoomDocument, rebuild_whole
from engine.errors import ProtocolError, QuotaExceeded, UpdateRejected
from engine.update_scan import scan_update
from engine.yjs import EMPTY_UPDATE
from tests.engine.helpers import typing_updates


def text(room: RoomDocument) -> str:
    return str(room.doc.get("t", type=Text))


def test_an_update_that_does_not_decode_is_rejected_and_changes_nothing() -> None:
    room = RoomDocument()
    for update in typing_updates("ok"):
        room.apply(update)
    before = room.state_vector()
    for garbage in (b"\xff", b"\x01\x01\x05\x00\x04", b"\x00\x00\x07"):
        with pytest.raises(UpdateRejected):
            room.apply(garbage)
    assert room.state_vector() == before and text(room) == "ok"


def test_update_and_document_quotas_reject_before_applying() -> None:
    updates = typing_updates("abcdef")
    small = RoomDocument(max_update_bytes=16)
    with pytest.raises(QuotaExceeded, match="exceeds the limit"):
        small.apply(b"\x00" * 17)
    room = RoomDocument(max_doc_bytes=sum(len(u) for u in updates[:3]))
    for update in updates[:3]:
        room.apply(update)
    with pytest.raises(QuotaExceeded, match="grow past"):
        room.apply(updates[3])
    assert text(room) == "abc"
    room.apply(updates[3], "storage")  # what is stored loads whatever today's limits
    assert text(room) == "abcd"


def test_nesting_deeper_than_the_limit_is_rejected_before_pycrdt_sees_it() -> None:
    nested = b"\x75\x01" * 1000 + b"\x7e"
    update = b"\x01\x01\x07\x00" + b"\x08" + b"\x01\x01m" + b"\x01" + nested + b"\x00"
    with pytest.raises(UpdateRejected, match="nested deeper"):
        RoomDocument().apply(update)


def test_apply_reports_the_authoring_clients() -> None:
    update = typing_updates("x", client_id=424242)[0]
    assert RoomDocument().apply(update) == (424242,) == scan_update(update).clients


def test_array_values_are_scanned_exactly_and_truncations_are_protocol_errors() -> None:
    """Strings and bytes take the scanner's inline path, the rest the general walk."""
    doc: Doc[Array[object]] = Doc()
    items = doc.get("items", type=Array)
    items.extend(["short", "é" * 100, b"\x00\x01" * 90, 7, None, {"k": ["v", b"b"]}, "x" * 300])
    update = doc.get_update()
    shape = scan_update(update)
    assert shape.ranges == {doc.client_id: (0, 7)}
    for cut in range(len(update) - 1):
        try:
            scan_update(update[:cut])
        except ProtocolError:
            continue
        raise AssertionError(f"a cut at {cut} scanned as a whole update")


def test_a_stored_snapshot_that_carries_a_waiting_update_keeps_it() -> None:
    """A snapshot may hold an update whose dependency never arrived (encode_snapshot
    merges such updates in); loading it must keep tracking it, or the next snapshot
    would silently drop it."""
    updates = typing_updates("abcdef", client_id=9)
    source = RoomDocument()
    for update in updates[:3] + updates[4:]:  # the fourth is missing: the rest wait
        source.apply(update)
    assert text(source) == "abc"
    snapshot = source.encode_snapshot()
    loaded = RoomDocument.from_stored([snapshot])
    assert text(loaded) == "abc"
    again = RoomDocument.from_stored([loaded.encode_snapshot()])
    again.apply(updates[3])
    assert text(again) == "abcdef"


def test_a_whole_snapshot_loads_unscanned_with_the_same_clocks_and_content() -> None:
    updates = typing_updates("snapshot", client_id=7)
    snapshot, whole = rebuild_whole(updates)
    assert whole
    alone = RoomDocument.from_stored([snapshot], whole_snapshot=True)
    assert alone.live.clocks == RoomDocument.from_stored([snapshot]).live.clocks != {}
    assert alone.client_count == 1 and not alone.pending
    scanned = RoomDocument.from_stored([snapshot, *typing_updates("snapshot!", 7)[-1:]])
    unscanned = RoomDocument.from_stored(
        [snapshot, *typing_updates("snapshot!", 7)[-1:]], whole_snapshot=True
    )
    assert text(unscanned) == text(scanned) == "snapshot!"
    assert unscanned.live.clocks == scanned.live.clocks and unscanned.client_count == 1
    assert (unscanned.size_bytes, unscanned.version) == (scanned.size_bytes, scanned.version)
    assert unscanned.encode_snapshot() == scanned.encode_snapshot()


def test_a_rebuild_with_an_update_still_waiting_is_not_whole() -> None:
    updates = typing_updates("abcdef", client_id=9)
    snapshot, whole = rebuild_whole(updates[:3] + updates[4:])
    assert not whole
    room = RoomDocument.from_stored([snapshot])
    room.apply(updates[3])
    assert text(room) == "abcdef"


def test_the_version_counts_the_updates_that_changed_the_document() -> None:
    updates = typing_updates("abc")
    room = RoomDocument()
    assert room.version == 0
    room.apply(updates[0])
    room.apply(EMPTY_UPDATE)  # changes nothing: no new version
    assert room.version == 1
    room.apply(updates[1])
    assert room.version == 2
    snapshot = RoomDocument.from_stored(updates[:2]).encode_snapshot()
    loaded = RoomDocument.from_stored([snapshot, updates[2]], whole_snapshot=True)
    assert loaded.version == 2 and text(loaded) == "abc"
    assert loaded.size_bytes == len(snapshot) + len(updates[2])


def test_a_quota_takes_an_update_of_exactly_its_size() -> None:
    update = typing_updates("a")[0]
    room = RoomDocument(max_update_bytes=len(update), max_doc_bytes=len(update))
    room.apply(update)
    assert text(room) == "a" and room.size_bytes == len(update)


def test_stored_updates_load_past_todays_limits_and_new_ones_meet_them() -> None:
    updates = typing_updates("abcd")
    limit = len(updates[0])
    room = RoomDocument.from_stored(updates[:3], max_update_bytes=limit, max_doc_bytes=limit)
    assert text(room) == "abc"  # what is stored is the room
    with pytest.raises(QuotaExceeded, match="grow past"):
        room.apply(updates[3])
    lone = RoomDocument.from_stored([], max_update_bytes=limit - 1)
    with pytest.raises(QuotaExceeded, match="exceeds the limit"):
        lone.apply(updates[0])
    big = RoomDocument.from_stored([], max_doc_bytes=limit - 1)
    with pytest.raises(QuotaExceeded, match="grow past"):
        big.apply(updates[0])


def test_a_diff_carries_only_what_the_peer_lacks() -> None:
    updates = typing_updates("ab")
    room = RoomDocument.from_stored(updates)
    peer = RoomDocument.from_stored(updates[:1])
    peer.apply(room.diff(peer.state_vector()))
    assert text(peer) == "ab"
    assert room.diff(room.state_vector()) == EMPTY_UPDATE
