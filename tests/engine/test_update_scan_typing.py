"""The typing fast path of `scan_update` reads exactly what the general walk reads.

`scan_update` first tries `scan_typing` (engine/typing_scan.py: one client's strings
and deleted runs, any delete set) and falls back to `_scan_any`. Whatever bytes come
in, the result, or the ProtocolError, must be the general walk's: a shape that differs
would let the guard miss another user's client id, or the document wait forever for a
struct.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pycrdt import Array, Doc, Map, Text, merge_updates

from engine.errors import ProtocolError
from engine.protocol import write_varuint
from engine.typing_scan import _LONG_UINTS, _LONG_UINTS_KEPT, _scan_keystroke, _uint
from engine.typing_scan import scan_typing as _scan_typing
from engine.update_scan import UpdateShape, _scan_any, scan_update
from tests.engine.helpers import recording_doc

MAX_CLIENT_ID = 2**53 - 1  # what Yjs draws client ids from

# An edit: (peer, kind, position seed, value). Multi-byte characters are in the fixed
# test below (yrs 0.28 panics on some concurrent edits around them).
edits = st.lists(
    st.tuples(
        st.integers(0, 2),
        st.sampled_from(["text", "text", "text", "delete", "array", "map", "format"]),
        st.integers(0, 1000),
        st.text(alphabet="abx", min_size=1, max_size=4),
    ),
    min_size=1,
    max_size=20,
)


def _edit(doc: Doc[Any], kind: str, seed: int, value: str) -> None:
    text = doc.get("t", type=Text)
    if kind == "text":
        text.insert(seed % (len(text) + 1), value)
    elif kind == "delete" and len(text):
        start = seed % len(text)
        del text[start : min(len(text), start + 1 + seed % 3)]
    elif kind == "format" and len(text):
        text.format(0, 1, {"bold": True})
    elif kind == "array":
        doc.get("a", type=Array).append(value)
    elif kind == "map":
        doc.get("m", type=Map)[value] = seed


def updates_of(script: list[tuple[int, str, int, str]], ids: list[int]) -> list[bytes]:
    """Three peers (with the given client ids) edit, syncing every few edits; every
    update made, then merges of runs of them (several clients, several structs)."""
    peers = [recording_doc(client_id=i) for i in ids]
    made: list[bytes] = []
    for step, (who, kind, seed, value) in enumerate(script):
        doc, updates = peers[who]
        before = len(updates)
        _edit(doc, kind, seed, value)
        made += updates[before:]
        if step % 3 == 2:
            for doc_a, _ in peers:
                for doc_b, _ in peers:
                    if doc_a is not doc_b:
                        doc_b.apply_update(doc_a.get_update(doc_b.get_state()))
    merged = [merge_updates(*made[i : i + 3]) for i in range(0, len(made), 3)]
    return made + [bytes(m) for m in merged]


def general(update: bytes) -> UpdateShape | ProtocolError:
    try:
        return _scan_any(update, 256)
    except ProtocolError as exc:
        return exc


def same_as_general(update: bytes) -> None:
    """`scan_update` gives what the general walk gives, error or shape."""
    want = general(update)
    fast = _scan_typing(update)
    if isinstance(want, ProtocolError):
        assert fast is None, f"{update.hex()}: fast path read a malformed update"
        with pytest.raises(ProtocolError):
            scan_update(update)
        return
    assert fast is None or fast == want, update.hex()
    assert scan_update(update) == want


client_ids = st.lists(st.integers(1, MAX_CLIENT_ID), min_size=3, max_size=3, unique=True)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edits, client_ids)
def test_real_updates_scan_alike_on_both_paths(
    script: list[tuple[int, str, int, str]], ids: list[int]
) -> None:
    for update in updates_of(script, ids):
        same_as_general(update)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edits, client_ids, st.data())
def test_damaged_updates_fail_or_scan_alike_on_both_paths(
    script: list[tuple[int, str, int, str]], ids: list[int], data: st.DataObject
) -> None:
    """Truncated, overwritten and extended updates: never a shape the general walk
    would not give, never a success where it reports an error."""
    updates = updates_of(script, ids)
    assume(updates)
    update = data.draw(st.sampled_from(updates))
    at = data.draw(st.integers(0, len(update) - 1))
    byte = data.draw(st.integers(0, 255))
    same_as_general(update[:at])
    same_as_general(update[:at] + bytes([byte]) + update[at + 1 :])
    same_as_general(update[:at] + bytes([byte]) + update[at:])
    same_as_general(update + bytes([byte]))


def test_typing_takes_the_fast_path_and_other_content_the_general_walk() -> None:
    doc, updates = recording_doc(client_id=MAX_CLIENT_ID)
    text = doc.get("t", type=Text)
    text += "hello"
    keystrokes = len(updates)
    text.insert(2, "😀")  # two UTF-16 units, between two origins
    text.insert(0, "€")  # three UTF-8 bytes, one unit, before a right origin only
    text += "!"  # after a left origin only
    keystrokes = len(updates) - keystrokes
    del text[0:2]
    for update in updates:
        assert _scan_typing(update) == _scan_any(update, 256)
    assert all(_scan_keystroke(update) for update in updates[-1 - keystrokes : -1])
    doc.get("m", type=Map)["k"] = [1, {"deep": True}]
    assert _scan_typing(updates[-1]) is None  # a value that may nest: the general walk
    assert scan_update(updates[-1]) == _scan_any(updates[-1], 256)


def test_long_varuints_table_stays_bounded_and_right() -> None:
    """Every distinct client id an attacker makes up is remembered only up to a bound;
    values read through the table are always the encoded ones."""
    for value in range(2**40, 2**40 + 2 * _LONG_UINTS_KEPT + 1):
        encoded = bytearray()
        write_varuint(encoded, value)
        assert _uint(bytes(encoded) + b"\x00", 0) == (value, len(encoded))
        assert _uint(bytes(encoded), 0) == (value, len(encoded))  # now from the table
        assert len(_LONG_UINTS) <= _LONG_UINTS_KEPT


def test_an_empty_string_placed_by_its_neighbour_scans_alike() -> None:
    """A damaged update whose string is empty and placed by a right origin only: the
    general walk keeps no end for it, nor may the fast path (found by the test above)."""
    same_as_general(bytes.fromhex("0101010044000200016100"))
