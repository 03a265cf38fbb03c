"""A root's type, told by two walks: the quick one (`quick_root_types`, decided by the
structs that name a root) and the one that places every struct (`placed_root_types`).

Both must give exactly what the walk they replace gave: the reference below, which
reads every struct's head with `iter_structs` and follows every chain of origins. The
rooms are written by several clients that each give the same root names their own types
(so kinds mix in one root), with deletes, overwritten keys, nested types collected with
their parent, formatting and XML, and are read whole, as merges, and as the diffs one
client sends another (whose origins are often outside them).
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycrdt import Array, Doc, Map, Text, XmlElement, XmlFragment, XmlText, merge_updates

from engine.errors import ProtocolError
from engine.jsonview import placed_root_types, root_types
from engine.protocol import write_varuint
from engine.quick_roots import quick_root_types
from engine.update_scan import StructHead, iter_structs

_XML_REFS = (3, 5, 6)
_TEXT_KINDS = (4, 5, 6)
_PRECEDENCE = ("xml", "text", "map", "array")


def reference_root_types(state: bytes) -> dict[str, str]:
    """The walk both replace (as it was), with one change: an origin cycle, on which it
    looped for ever, places nothing."""
    heads = list(iter_structs(state))
    evidence: dict[str, set[str]] = {}
    for head, (root, keyed) in zip(heads, _reference_placements(heads), strict=True):
        if root is None:
            continue
        seen = evidence.setdefault(root, set())
        if keyed:
            seen.add("map")
        elif head.kind == 7 and head.type_ref in _XML_REFS:
            seen.add("xml")
        elif head.kind in _TEXT_KINDS:
            seen.add("text")
        elif head.kind != 1:
            seen.add("array")
    return {
        root: next(kind for kind in _PRECEDENCE if kind in seen)
        for root, seen in evidence.items()
        if seen
    }


def _reference_placements(heads: list[StructHead]) -> list[tuple[str | None, bool]]:
    starts: dict[int, list[int]] = {}
    where: dict[int, list[int]] = {}
    for i, head in enumerate(heads):
        starts.setdefault(head.client, []).append(head.clock)
        where.setdefault(head.client, []).append(i)
    for client, clocks in starts.items():
        order = sorted(range(len(clocks)), key=clocks.__getitem__)
        starts[client] = [clocks[k] for k in order]
        where[client] = [where[client][k] for k in order]

    def find(ident: tuple[int, int] | None) -> int | None:
        if ident is None or ident[0] not in starts:
            return None
        k = bisect_right(starts[ident[0]], ident[1]) - 1
        i = where[ident[0]][k] if k >= 0 else None
        return i if i is not None and ident[1] < heads[i].clock + heads[i].length else None

    placed: list[tuple[str | None, bool] | None] = [None] * len(heads)
    for first in range(len(heads)):
        chain: list[int] = []
        at: int | None = first
        while at is not None and placed[at] is None and at not in chain:
            head = heads[at]
            if head.kind in (0, 10):
                placed[at] = (None, False)
            elif head.origin is None and head.right_origin is None:
                root = head.parent if isinstance(head.parent, str) else None
                placed[at] = (root, head.parent_sub is not None)
            else:
                chain.append(at)
                left, right = find(head.origin), find(head.right_origin)
                if any(n is not None and heads[n].kind == 0 for n in (left, right)):
                    placed[at] = (None, False)
                    break
                at = left if left is not None else right
        result = placed[at] if at is not None and at not in chain else (None, False)
        result = result or (None, False)
        for i in chain:
            placed[i] = result
    return [p or (None, False) for p in placed]


NAMES = ["r", "s", "ü"]
KINDS = [Array, Text, Map, XmlFragment]
Op = tuple[int, int, int, int, int]  # client, root name, action, i, j
ops = st.lists(
    st.tuples(
        st.integers(0, 2),
        st.integers(0, 2),
        st.integers(0, 9),
        st.integers(0, 99),
        st.integers(0, 99),
    ),
    min_size=1,
    max_size=30,
)


def _root(doc: Doc[Any], client: int, name: int, seed: int) -> Any:
    """Root `name` as this client types it: clients may type one name differently."""
    kind = KINDS[(name + seed * client) % len(KINDS)]
    return doc.get(NAMES[name], type=kind)


def _edit(root: Any, action: int, i: int, j: int) -> None:
    """Insert plain values and nested types, delete (the first element too), set and
    overwrite keys, format, add XML elements and text."""
    if isinstance(root, Text):
        if action < 5 or not len(root):
            root.insert(
                i % (len(root) + 1), "ab"[: 1 + j % 2], {"bold": True} if j % 3 == 0 else None
            )
        elif action < 8:
            start = i % len(root)
            del root[start : start + 1 + j % 2]
        else:
            root.format(0, len(root), {"italic": j % 2 == 0})
    elif isinstance(root, Array):
        if action < 5 or not len(root):
            value: Any = [j, f"v{j}", Map({"n": j}), Array([j]), Text("x")][j % 5]
            root.insert(i % (len(root) + 1), value)
        elif action < 8:
            del root[i % len(root)]
        else:
            del root[0 : len(root)]
    elif isinstance(root, Map):
        key = f"k{i % 3}"
        if action < 6 or key not in root:
            root[key] = [j, Map({"n": j}), Text("t")][j % 3]
        else:
            del root[key]
    elif isinstance(root, XmlFragment):
        if action < 5 or not len(root.children):
            node: Any = XmlElement("p", {"id": str(j)}) if j % 2 else XmlText("x")
            root.children.insert(i % (len(root.children) + 1), node)
        else:
            del root.children[i % len(root.children)]


def _states(history: list[Op], seed: int) -> list[bytes]:
    """Whole states, diffs between clients, and a merge, of a room three clients wrote
    (each syncing from the previous writer now and then)."""
    docs: list[Doc[Any]] = [Doc(client_id=c + 1) for c in range(3)]
    diffs: list[bytes] = []
    for n, (client, name, action, i, j) in enumerate(history):
        doc = docs[client]
        if action == 9:  # sync from another client; the diff it got is kept
            other = docs[(client + 1 + i % 2) % 3]
            diff = other.get_update(doc.get_state())
            diffs.append(diff)
            doc.apply_update(diff)
            continue
        try:
            _edit(_root(doc, client, name, seed + n % 2), action, i, j)
        except BaseException as exc:  # the name is another type in this client's doc
            if not isinstance(exc, Exception) and type(exc).__name__ != "PanicException":
                raise
            continue
    whole = [doc.get_update() for doc in docs]
    return [*whole, *diffs, merge_updates(*whole)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops, st.integers(0, 3))
def test_both_walks_give_the_root_types_of_the_walk_they_replace(
    history: list[Op], seed: int
) -> None:
    for state in _states(history, seed):
        expected = reference_root_types(state)
        assert placed_root_types(state) == expected
        quick = quick_root_types(state)
        assert quick is None or quick == expected
        assert root_types(state) == expected


@settings(max_examples=60, deadline=None)
@given(ops, st.integers(0, 3), st.data())
def test_a_corrupted_state_gives_the_same_answer_or_a_protocol_error(
    history: list[Op], seed: int, data: st.DataObject
) -> None:
    """Bytes changed anywhere: where the old walk answered, both answer the same; where
    it refused, so do they, except for a key that is not UTF-8, which the walks skip
    without decoding (pycrdt refuses it when the state is loaded)."""
    state = bytearray(data.draw(st.sampled_from(_states(history, seed))))
    for _ in range(data.draw(st.integers(1, 3))):
        state[data.draw(st.integers(0, len(state) - 1))] = data.draw(st.integers(0, 255))
    try:
        expected: dict[str, str] | str = reference_root_types(bytes(state))
    except ProtocolError as exc:
        expected = str(exc)
    for walk in (placed_root_types, quick_root_types, root_types):
        try:
            got: dict[str, str] | str | None = walk(bytes(state))
        except ProtocolError:
            assert isinstance(expected, str)
            continue
        if isinstance(expected, str):
            assert "not valid UTF-8" in expected, (walk.__name__, expected)
        elif got is not None:
            assert got == expected, walk.__name__


def _room_of_maps(maps: int, root: str) -> bytes:
    """`maps` small maps under one root, every other one changed since (as a big room)."""
    doc: Doc[Any] = Doc()
    items: Any = doc.get("items", type=Array if root == "array" else Map)
    keys: list[Any] = list(range(maps)) if root == "array" else [f"k{i}" for i in range(maps)]
    with doc.transaction():
        for i, key in enumerate(keys):
            if root == "array":
                items.append(Map({"n": i, "label": f"item {i}"}))
            else:
                items[key] = Map({"n": i, "label": f"item {i}"})
    for i in range(0, maps, 2):
        items[keys[i]]["n"] = -i
    return doc.get_update()


@pytest.mark.parametrize("root", ["array", "map"])
def test_a_big_room_is_decided_by_the_structs_that_name_its_root(root: str) -> None:
    now = _room_of_maps(200, root)
    assert quick_root_types(now) == {"items": root} == reference_root_types(now)


def test_a_text_whose_first_character_was_deleted_places_every_struct() -> None:
    """Its only struct naming the root is deleted: the rest, chained to it, decide."""
    doc: Doc[Any] = Doc()
    text = doc.get("t", type=Text)
    text.insert(0, "a")
    text.insert(1, "bc")
    del text[0:1]
    state = doc.get_update()
    assert quick_root_types(state) is None
    assert root_types(state) == {"t": "text"} == reference_root_types(state)


@pytest.mark.timeout(10)
def test_an_origin_cycle_places_nothing_and_ends() -> None:
    """Two strings each after the other (only a crafted update says so)."""
    cycle = bytes([1, 2, 1, 0, 0x84, 1, 1, 1, ord("a"), 0x84, 1, 0, 1, ord("b"), 0])
    assert root_types(cycle) == {} == placed_root_types(cycle)


def _varuint(value: int) -> bytes:
    out = bytearray()
    write_varuint(out, value)
    return bytes(out)


def _text(value: str) -> bytes:
    raw = value.encode()
    return _varuint(len(raw)) + raw


ident = st.tuples(st.integers(1, 3), st.integers(0, 4))
words = st.text(max_size=70)  # short (read inline) and long (read by the general reader)
contents = st.one_of(
    st.tuples(st.just(1), st.integers(1, 3).map(_varuint)),  # deleted, a length
    st.tuples(st.just(4), words.map(_text)),  # a string
    st.tuples(st.just(5), st.just(_text('{"img":1}'))),  # an embed
    st.tuples(st.just(6), st.just(_text("bold") + _text("true"))),  # a format
    st.tuples(st.just(8), words.map(lambda w: b"\x01\x77" + _text(w))),  # any: a string
    st.tuples(st.just(8), st.integers(0, 2**40).map(lambda n: b"\x01\x7d" + _varuint(n))),
    st.tuples(st.just(8), st.just(b"\x02\x7b" + bytes(8) + b"\x7e")),  # a float, null
    st.tuples(st.just(7), st.sampled_from([b"\x00", b"\x01", b"\x02", b"\x04", b"\x06"])),
    st.tuples(st.just(7), words.map(lambda w: b"\x03" + _text(w))),  # an XML element
)
parents = st.one_of(st.sampled_from(["r", "s", "x" * 70]), ident)
structs = st.one_of(
    st.tuples(st.sampled_from([0, 10]), st.integers(1, 3)),  # GC or Skip, a length
    st.tuples(
        contents,
        st.one_of(st.none(), ident),  # left origin
        st.one_of(st.none(), ident),  # right origin
        parents,
        st.booleans(),  # keyed
    ),
)
blocks = st.lists(
    st.tuples(st.integers(1, 3), st.integers(0, 3), st.lists(structs, min_size=1, max_size=6)),
    min_size=1,
    max_size=5,
)


def _struct(struct: Any) -> bytes:
    if len(struct) == 2:
        return bytes([struct[0]]) + _varuint(struct[1])
    (kind, content), left, right, parent, keyed = struct
    key = "k" * (len(content) % 7)
    named = left is None and right is None
    info = kind | (0x80 if left else 0) | (0x40 if right else 0) | (0x20 if keyed else 0)
    out = bytes([info])
    for origin in (left, right):
        if origin is not None:
            out += _varuint(origin[0]) + _varuint(origin[1])
    if named:
        out += b"\x01" + _text(parent) if isinstance(parent, str) else b"\x00"
        if not isinstance(parent, str):
            out += _varuint(parent[0]) + _varuint(parent[1])
        if keyed:
            out += _text(key)
    return bytes(out + content)


def _crafted(runs: list[tuple[int, int, list[Any]]]) -> bytes:
    """An update of these runs of structs, as a client could send it: clients may
    repeat, origins may be missing, cyclic or collected."""
    out = _varuint(len(runs))
    for client, clock, items in runs:
        out += _varuint(len(items)) + _varuint(client) + _varuint(clock)
        out += b"".join(_struct(item) for item in items)
    return out + b"\x00"


@settings(max_examples=300, deadline=None)
@given(blocks)
def test_crafted_structs_give_the_root_types_of_the_walk_they_replace(
    runs: list[tuple[int, int, list[Any]]],
) -> None:
    state = _crafted(runs)
    expected = reference_root_types(state)
    assert placed_root_types(state) == expected
    quick = quick_root_types(state)
    assert quick is None or quick == expected
    assert root_types(state) == expected


def test_an_item_next_to_collected_content_is_in_no_root() -> None:
    """Its left neighbour is a deleted item of root "t", its right one collected."""
    deleted_in_t = (((1, _varuint(1)), None, None, "t", False),)
    collected = ((0, 1),)
    between = (((4, _text("b")), (1, 0), (2, 0), "t", False),)
    runs: list[tuple[int, int, list[Any]]] = [
        (1, 0, list(deleted_in_t)),
        (2, 0, list(collected)),
        (3, 0, list(between)),
    ]
    state = _crafted(runs)
    assert root_types(state) == {} == placed_root_types(state) == reference_root_types(state)


def test_text_typed_after_an_arrays_element_makes_its_root_text() -> None:
    element = (((8, b"\x01\x7e"), None, None, "r", False),)
    typed = (((4, _text("ab")), (1, 0), None, "r", False),)
    state = _crafted([(1, 0, list(element)), (2, 0, list(typed))])
    assert quick_root_types(state) is None
    assert root_types(state) == {"r": "text"} == reference_root_types(state)


def test_an_item_is_placed_by_its_left_neighbour_before_its_right() -> None:
    in_t = (((1, _varuint(1)), None, None, "t", False),)
    in_u = (((1, _varuint(1)), None, None, "u", False),)
    between = (((4, _text("b")), (1, 0), (2, 0), "t", False),)
    state = _crafted([(1, 0, list(in_t)), (2, 0, list(in_u)), (3, 0, list(between))])
    assert root_types(state) == {"t": "text"} == reference_root_types(state)
