"""Restore a room to an earlier state as one forward edit, not a rewind.

History in a CRDT cannot be undone by dropping updates: every replica already holds
them, and an offline replica would bring them back. So a restore is an ordinary edit
made on top of the current document: the difference between the current content and
the earlier one, per root, in one transaction; replicas merge it like any other update,
and edits made offline meanwhile merge on top of it.

The edit is kept small so it reads as what changed, not as a rewrite: text is diffed by
characters (difflib after trimming the common ends; by lines first when both sides are
large), keeping formatting and embeds; arrays and XML children are diffed by the
content of their elements, and elements of the same kind on both sides are edited in
place; maps set and delete keys and recurse into nested types of the same kind.
Anything that cannot be edited in place is replaced by a deep copy of the target.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from functools import partial
from typing import Any

from pycrdt import Array, Doc, Map, Text, XmlElement, XmlFragment, XmlText

from engine.errors import UpdateRejected
from engine.jsonview import (
    array_roots,
    attributes_of,
    check_types,
    load_doc,
    root_of,
    root_types,
)
from engine.map_read import map_items
from engine.textdiff import RichText, canonical, chunks, opcodes
from engine.yjs import EMPTY_UPDATE, decode_state_vector

Shared = Text | Array[Any] | Map[Any] | XmlFragment | XmlElement | XmlText
ORIGIN = "restore"
_SCALARS = (str, float, int, bool, type(None))
_EDITABLE = (Map, Array, Text, XmlText, XmlFragment)  # one of these on both sides: edited


def restore_update(
    current: bytes,
    target: bytes,
    types: Mapping[str, str] | None = None,
    *,
    client_id: int | None = None,
    target_whole: bool = False,
) -> bytes:
    """One Yjs update that, applied to `current`, makes its JSON view equal `target`'s.

    Args:
        current: the room's whole state now (a Yjs v1 update).
        target: the room's whole state at the point to restore (a Yjs v1 update).
        types: root name -> "text" | "array" | "map" | "xml", as for the JSON view.
        client_id: the Yjs client id to author the edit; a fresh one by default.
        target_whole: `target` comes from this server's own store and integrates whole:
            a snapshot stored whole, or a state merged from checked updates that
            `rebuild_whole` found whole. It is then loaded without the bounded walk every
            other state gets (a third of a big room's restore), as a room's load skips
            it for a whole snapshot; never pass it for bytes from elsewhere.

    Returns:
        The update (v1); `EMPTY_UPDATE` when the content already matches.

    Raises:
        ValueError: `types` names an unknown type, or `client_id` already wrote to the room.
        ProtocolError / UpdateRejected: a state does not decode or apply, or holds a
            value pycrdt cannot copy (an XML element outside an XML node).
    """
    kinds = root_types(current) | check_types(types)  # walks `current` (bounded)
    doc, have = _load_as_new_author(current, client_id, array_roots(kinds))
    past, want = load_doc(target, arrays=array_roots(kinds), walked=target_whole)
    if set(past.keys()) - kinds.keys():  # roots that hold nothing now but did then
        kinds = root_types(target) | kinds
        past, want = load_doc(target, arrays=array_roots(kinds), walked=True)
    updates: list[bytes] = []
    subscription = doc.observe(lambda event: updates.append(bytes(event.update)))
    try:  # one read transaction on `past` for the whole walk, not one per access
        with doc.transaction(origin=ORIGIN), past.transaction():
            for name, kind in kinds.items():
                now, then = root_of(doc, name, kind), root_of(past, name, kind)
                if kind == "array":
                    _sync_sequence(now, have.get(name, []), want[name])
                else:
                    sync(now, then)
    finally:
        doc.unobserve(subscription)
    return updates[0] if updates else EMPTY_UPDATE


def _load_as_new_author(
    current: bytes, client_id: int | None, arrays: list[str]
) -> tuple[Doc[Any], dict[str, list[Any]]]:
    """The current document, edited by a client id that has not written to the room:
    reusing one would make two authors of the same clock values."""
    while True:
        doc, elements = load_doc(current, client_id, arrays=arrays, walked=True)
        if doc.client_id not in decode_state_vector(doc.get_state()):
            return doc, elements
        if client_id is not None:
            raise ValueError(f"client id {client_id} has already written to this room")


def sync(current: Shared, target: Shared) -> None:
    """Edit `current` in place until its content equals `target`'s (same kind)."""
    if type(current) is Map:  # most nested values, before the (abc) checks below
        _sync_map(current, _as(target, Map))
    elif isinstance(current, XmlText):
        _sync_text(current, target)
        _sync_attributes(current, target)
    elif isinstance(current, Text):
        _sync_text(current, target)
    elif isinstance(current, Array):
        _sync_sequence(current, list(current), list(_as(target, Array)))
    elif isinstance(current, Map):
        _sync_map(current, _as(target, Map))
    elif isinstance(current, XmlElement):
        _sync_attributes(current, target)
        _sync_sequence(current, list(current.children), list(_as(target, XmlElement).children))
    elif isinstance(current, XmlFragment):
        _sync_sequence(current, list(current.children), list(_as(target, XmlFragment).children))
    else:
        raise TypeError(f"cannot restore a {type(current).__name__}")


def _as(value: Any, kind: type[Any]) -> Any:
    assert isinstance(value, kind), f"{type(value).__name__} is not {kind.__name__}"
    return value


def _same_kind(current: Any, target: Any) -> bool:
    """Whether `current` can be edited into `target` (an XML tag cannot be renamed)."""
    if type(current) in _SCALARS or type(target) in _SCALARS:
        return False  # plain values are replaced, not edited
    if type(current) is type(target) and type(current) in _EDITABLE:
        return True  # the usual case, without the (abc) checks below
    if isinstance(current, XmlElement):
        return isinstance(target, XmlElement) and current.tag == target.tag
    kinds = (XmlText, XmlFragment, Text, Array, Map)
    return any(isinstance(current, k) and isinstance(target, k) for k in kinds)


def fingerprint(value: Any) -> Hashable:
    """Content identity of a value: equal for equal content of the same kind (so `1` and
    `true`, or a string and a Y.Text of it, differ), used to diff sequences."""
    kind = type(value)
    if kind in _SCALARS and value == value:  # most values: skip the (abc) checks below
        return (kind.__name__, value)  # the type keeps `1` and `true` apart
    if kind is Map:  # most shared values, checked before the (abc) checks below
        return _map_key(map_items(value))
    if isinstance(value, XmlText):
        return ("xml-text", _delta_key(value), _attrs_key(value))
    if isinstance(value, Text):
        return ("text", _delta_key(value))
    if isinstance(value, Array):
        return ("array", tuple(fingerprint(item) for item in value))
    if isinstance(value, Map):
        return ("map", tuple(sorted((k, fingerprint(v)) for k, v in map_items(value))))
    if isinstance(value, XmlElement):
        children = tuple(fingerprint(child) for child in value.children)
        return ("xml-element", value.tag, _attrs_key(value), children)
    if isinstance(value, XmlFragment):
        return ("xml", tuple(fingerprint(child) for child in value.children))
    if isinstance(value, Doc):
        return ("doc", value.guid)
    if isinstance(value, bytes | bytearray):
        return ("bytes", bytes(value))
    return ("value", canonical(value))  # NaN goes the JSON way


def _map_key(entries: list[tuple[str, Any]]) -> Hashable:
    return ("map", tuple(sorted([(key, fingerprint(value)) for key, value in entries])))


def _delta_key(text: Text | XmlText) -> Hashable:
    return tuple(
        (insert if isinstance(insert, str) else fingerprint(insert), canonical(attrs))
        for insert, attrs in chunks(text)
    )


def _attrs_key(node: XmlElement | XmlText) -> str:
    return canonical(dict(attributes_of(node)))


def _sync_attributes(current: Any, target: Any) -> None:
    have = dict(attributes_of(current))
    want = dict(attributes_of(target))
    for key in have.keys() - want.keys():
        del current.attributes[key]
    for key, value in want.items():
        if key not in have or canonical(have[key]) != canonical(value):
            current.attributes[key] = _plain_copy(value)


def _sync_map(
    current: Map[Any],
    target: Map[Any],
    entries: tuple[list[tuple[str, Any]], list[tuple[str, Any]]] | None = None,
) -> None:
    """`entries`: both maps' entries, when the caller has read them already."""
    have_entries, want_entries = entries or (map_items(current), map_items(target))
    have, want = dict(have_entries), dict(want_entries)
    for key in have.keys() - want.keys():
        del current[key]
    for key, value in want.items():
        if key in have and _same_kind(have[key], value):
            sync(have[key], value)
        elif key not in have or fingerprint(have[key]) != fingerprint(value):
            place(partial(current.__setitem__, key), value)


def _sync_sequence(container: Any, have: list[Any], want: list[Any]) -> None:
    """Diff two lists of children by content; edit same-kind pairs in place.

    Every edit goes right to left (blocks from the end, and within a block the last
    element first, each inserted at the same index): Yrs walks from the start to an
    index through the items of the open transaction, so left-to-right inserts in one
    transaction cost quadratic time and memory.
    """
    have_keys, have_entries = _keys_and_entries(have)
    want_keys, want_entries = _keys_and_entries(want)
    for tag, i1, i2, j1, j2 in reversed(opcodes(have_keys, want_keys)):
        if tag == "equal":
            continue
        paired = min(i2 - i1, j2 - j1)
        if i2 - i1 > paired:
            _delete(container, i1 + paired, i2)
        for k in reversed(range(paired, j2 - j1)):
            _insert(container, i1 + paired, want[j1 + k])
        for k in reversed(range(paired)):
            now, then = have[i1 + k], want[j1 + k]
            if type(now) is Map and type(then) is Map:  # entries read for the diff
                _sync_map(now, then, (have_entries[i1 + k], want_entries[j1 + k]))
            elif _same_kind(now, then):
                sync(now, then)
            else:
                _delete(container, i1 + k, i1 + k + 1)
                _insert(container, i1 + k, want[j1 + k])


def _keys_and_entries(
    values: list[Any],
) -> tuple[list[Hashable], dict[int, list[tuple[str, Any]]]]:
    """The values' fingerprints, and the entries of those that are maps by position:
    a pair of maps the diff keeps is edited from the same entries, not read again
    (nothing edits a map before its own turn)."""
    keys: list[Hashable] = []
    entries: dict[int, list[tuple[str, Any]]] = {}
    for at, value in enumerate(values):
        if type(value) is Map:
            entries[at] = map_items(value)
            keys.append(_map_key(entries[at]))
        else:
            keys.append(fingerprint(value))
    return keys, entries


def _delete(container: Any, start: int, stop: int) -> None:
    if isinstance(container, Array):
        del container[start:stop]
    else:
        del container.children[start:stop]


def _insert(container: Any, index: int, value: Any) -> None:
    if isinstance(container, Array):
        place(partial(container.insert, index), value)
    elif isinstance(value, XmlText):
        sync(container.children.insert(index, ""), value)
    elif isinstance(value, XmlElement):
        sync(container.children.insert(index, XmlElement(value.tag)), value)
    else:
        raise UpdateRejected(f"cannot restore a {type(value).__name__} inside an XML node")


def place(put: Callable[[Any], object], value: Any) -> None:
    """Put a deep copy of `value` where `put` puts it: a fresh shared type filled by
    `sync` (which keeps formatting), or a plain value."""
    fresh: Shared | Doc[Any] | None
    if type(value) in _SCALARS:  # most values: nothing to copy, no (abc) checks
        put(value)
        return
    if isinstance(value, XmlElement | XmlText):
        raise UpdateRejected(f"pycrdt cannot copy a {type(value).__name__} outside XML")
    if isinstance(value, Doc):
        fresh = Doc(guid=value.guid)
    elif isinstance(value, Text | Array | Map | XmlFragment):
        fresh = type(value)()
    else:
        fresh = None
    if fresh is None:
        put(_plain_copy(value))
        return
    put(fresh)
    if not isinstance(fresh, Doc):
        sync(fresh, value)


def _plain_copy(value: Any) -> Any:
    if isinstance(value, bytearray):
        return bytes(value)
    if isinstance(value, dict):
        return {key: _plain_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain_copy(item) for item in value]
    return value


def _sync_text(current: Text | XmlText, target: Any) -> None:
    """Character diff of two rich texts: replaced spans are deleted and re-inserted with
    the target's formatting and embeds; kept spans get only formatting changes."""
    have, want = RichText.pair(current, target, fingerprint)
    for tag, i1, i2, j1, j2 in reversed(opcodes(have.chars, want.chars)):
        if tag == "equal":
            for start, stop, attrs in reversed(have.format_changes(want, i1, i2, j1)):
                current.format(have.offset(start), have.offset(stop), attrs)
            continue
        at = have.offset(i1)
        if i2 > i1:
            del current[at : have.offset(i2)]
        for piece, attrs in reversed(list(want.pieces(j1, j2))):  # right to left, as above
            if isinstance(piece, str):
                current.insert(at, piece, attrs)
            else:
                place(partial(current.insert_embed, at, attrs=attrs), piece)
