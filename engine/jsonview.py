"""A room's content as JSON, the way a Yjs client's `doc.get(name, Type).toJSON()` shows it.

A Yjs update never says what type a root is, and pycrdt cannot read a root it was not
told the type of, so each root's type is inferred from the structs stored under it:
XML nodes make an XML fragment, strings, embeds and formatting marks make text, keyed
items make a map, any other content makes an array. `types` overrides the inference.

A root with no visible content cannot be told apart ("" or [] or {}?), and Yjs itself
creates roots on first access, so an absent root and an empty one mean the same thing:
inferred roots whose value is empty are left out; roots named in `types` always appear.

Values follow Yjs `toJSON`: text is its string (embeds and formatting left out), XML is
its `toString()`; where that is not JSON, the view says so: bytes are base64 text,
numbers JSON cannot hold are null, and a subdocument is `{"guid": ...}`.

Nesting is capped at MAX_DEPTH levels: a room nested deeper (any client may write one)
is a clear error rather than a stack overflow here or in the JSON encoder after.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from functools import partial
from typing import Any

from pycrdt import Array, ArrayEvent, Doc, Map, Text, XmlElement, XmlFragment, XmlText

from engine.errors import ProtocolError, UpdateRejected
from engine.live_doc import LiveDoc
from engine.map_read import map_items
from engine.quick_roots import quick_root_types
from engine.struct_read import ARRAY, TEXT, XML
from engine.struct_roots import place_structs

ROOT_TYPES = ("text", "array", "map", "xml")
RootType = Text | Array[Any] | Map[Any] | XmlFragment
_PYCRDT_TYPES: dict[str, type[RootType]] = {
    "text": Text,
    "array": Array,
    "map": Map,
    "xml": XmlFragment,
}
_EVIDENCE = {XML: "xml", TEXT: "text", ARRAY: "array"}  # what a struct's own content says
_PRECEDENCE = ("xml", "text", "map", "array")  # text with attributes also has keyed items
_EXPONENT = re.compile(r"e([+-])0*(\d)")
MAX_DEPTH = 256


def _deeper(depth: int) -> int:
    """The next level's depth.

    Raises:
        ProtocolError: past MAX_DEPTH.
    """
    if depth >= MAX_DEPTH:
        raise ProtocolError(
            0,
            f"the room nests deeper than {MAX_DEPTH} levels; the JSON view stops there "
            "(its state is still readable from /state)",
        )
    return depth + 1


def to_json(
    state: bytes, types: Mapping[str, str] | None = None, *, whole: bool = False
) -> dict[str, Any]:
    """The content of every root of `state` (a whole Yjs v1 update) as JSON values.

    Args:
        types: root name -> "text" | "array" | "map" | "xml"; overrides the inference.
        whole: `state` comes from this server's own store and integrates whole (a state
            `rebuild_whole` merged and found whole). Reading its root types walks it
            once (bounded) either way; it is then loaded without the second walk that
            tracks what may still wait, which a big room's view paid for twice.

    Raises:
        ValueError: `types` names a type that is none of the four.
        ProtocolError: `state` does not decode, or nests deeper than MAX_DEPTH.
        UpdateRejected: pycrdt cannot apply `state`.
    """
    kinds = resolve_types(state, types)
    doc, elements = load_doc(state, arrays=array_roots(kinds), walked=whole)
    named = types or {}
    view: dict[str, Any] = {}
    with doc.transaction():
        for name, kind in kinds.items():
            if kind == "array":
                value = [value_json(item) for item in elements[name]]
            else:
                value = value_json(root_of(doc, name, kind))
            if name in named or value not in ("", [], {}):
                view[name] = value
    return view


def check_types(types: Mapping[str, str] | None) -> dict[str, str]:
    """Validate caller-given root types (a bad one is the caller's mistake, an HTTP 400)."""
    for name, kind in (types or {}).items():
        if kind not in ROOT_TYPES:
            raise ValueError(
                f"unknown type {kind!r} for root {name!r}: use one of {', '.join(ROOT_TYPES)}"
            )
    return dict(types or {})


def resolve_types(state: bytes, types: Mapping[str, str] | None = None) -> dict[str, str]:
    """The inferred root types of `state` with `types` laid over them."""
    overrides = check_types(types)
    return root_types(state) | overrides


def root_types(state: bytes) -> dict[str, str]:
    """Each root's type as told by the structs stored under it. Roots holding only
    deleted content carry no evidence and are left out. Most states are decided by the
    structs that name a root (`quick_root_types`); the others place every struct.

    Raises:
        ProtocolError: `state` is malformed or nested too deep.
    """
    quick = quick_root_types(state)
    return quick if quick is not None else placed_root_types(state)


def placed_root_types(state: bytes) -> dict[str, str]:
    """`root_types` from every struct's placement (`place_structs`)."""
    placed = place_structs(state)
    seen: list[set[str]] = [set() for _ in placed.roots]
    for evidence, placement in zip(placed.evidence, placed.placement, strict=True):
        if placement < 0:
            continue
        if placement & 1:
            seen[placement >> 1].add("map")
        elif evidence in _EVIDENCE:
            seen[placement >> 1].add(_EVIDENCE[evidence])
    return {
        root: next(kind for kind in _PRECEDENCE if kind in found)
        for root, found in zip(placed.roots, seen, strict=True)
        if found
    }


def load_doc(
    state: bytes,
    client_id: int | None = None,
    *,
    arrays: Iterable[str] = (),
    walked: bool = False,
) -> tuple[Doc[Any], dict[str, list[Any]]]:
    """A pycrdt Doc holding `state`, and the elements of its root arrays named in
    `arrays`. pycrdt (0.14) reads an array element by element from the start, which
    is quadratic; the event of loading hands all of them over at once.

    `walked`: the caller has already walked `state` with the bounded scan (`root_types`
    does), so it is not scanned a second time before pycrdt reads it.

    Raises:
        UpdateRejected: pycrdt cannot apply it (its Rust panics included).
    """
    live = LiveDoc(Doc() if client_id is None else Doc(client_id=client_id))
    doc = live.doc
    elements: dict[str, list[Any]] = {}
    watched = []
    changed: list[str] = []  # the name of each array, once per event it got
    for name in arrays:
        root: Array[Any] = doc.get(name, type=Array)
        elements[name] = []
        watched.append((root, root.observe(partial(_collect, name, elements[name], changed))))
    try:
        if walked:
            live.apply_whole(state)
        else:
            live.apply(state)
    except UpdateRejected as exc:
        raise UpdateRejected(f"state does not apply: {exc}") from exc
    finally:
        for root, subscription in watched:
            root.unobserve(subscription)
    if len(changed) > len(set(changed)):  # settling took more than one transaction
        elements = {name: list(doc.get(name, type=Array)) for name in arrays}
    return doc, elements


def _collect(name: str, into: list[Any], changed: list[str], event: ArrayEvent) -> None:
    changed.append(name)
    changes: list[dict[str, Any]] = event.delta  # type: ignore[attr-defined]  # untyped slot
    for change in changes:
        into.extend(change.get("insert", ()))


def array_roots(kinds: Mapping[str, str]) -> list[str]:
    return [name for name, kind in kinds.items() if kind == "array"]


def root_of(doc: Doc[Any], name: str, kind: str) -> RootType:
    """The root `name` of `doc` read as `kind` (one of ROOT_TYPES)."""
    root: RootType = doc.get(name, type=_PYCRDT_TYPES[kind])
    return root


def attributes_of(node: XmlElement | XmlText) -> list[tuple[str, Any]]:
    """An XML node's attributes, sorted by name (pycrdt types its view as a bare
    Iterable, so it is read through `__iter__`)."""
    return sorted(node.attributes.__iter__())


def value_json(value: Any, depth: int = 0) -> Any:
    """A shared type or stored value as Yjs `toJSON` gives it (JSON-safe, see module)."""
    if isinstance(value, XmlFragment | XmlElement | XmlText):
        return xml_string(value, depth)
    if isinstance(value, Text):
        return str(value)
    if isinstance(value, Array):
        inner = _deeper(depth)
        return [value_json(item, inner) for item in value]
    if isinstance(value, Map):
        inner = _deeper(depth)
        return {key: value_json(item, inner) for key, item in map_items(value)}
    return plain_json(value, depth)


def plain_json(value: Any, depth: int = 0) -> Any:
    """A stored (non-shared) value as JSON. Yjs numbers are doubles, so an integral
    float is written as an integer, as JSON.stringify does."""
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return int(value) if value.is_integer() and abs(value) <= 2**53 else value
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dict):
        inner = _deeper(depth)
        return {key: plain_json(item, inner) for key, item in value.items()}
    if isinstance(value, list | tuple):
        inner = _deeper(depth)
        return [plain_json(item, inner) for item in value]
    if isinstance(value, Doc):
        return {"guid": value.guid}
    return value


def xml_string(node: XmlFragment | XmlElement | XmlText, depth: int = 0) -> str:
    """Yjs `toString()` of an XML node: tags lower-cased, attributes sorted by name,
    formatted text wrapped in one tag per mark (YXmlElement / YXmlText `toString`)."""
    if isinstance(node, XmlText):
        return "".join(_marked(insert, attrs) for insert, attrs in node.diff())
    level = _deeper(depth)
    inner = "".join(xml_string(child, level) for child in node.children)
    if isinstance(node, XmlFragment):
        return inner
    tag = (node.tag or "").lower()
    attrs = "".join(f' {key}="{js_string(value)}"' for key, value in attributes_of(node))
    return f"<{tag}{attrs}>{inner}</{tag}>"


def _marked(insert: Any, marks: Mapping[str, Any] | None) -> str:
    """One delta run of an XmlText. Yjs lists a mark's attributes with `for..in`, so a
    mark whose value is `true` has none and a string value lists its characters."""
    nested = sorted((marks or {}).items())
    opens = "".join(f"<{name}{_mark_attrs(value)}>" for name, value in nested)
    closes = "".join(f"</{name}>" for name, _value in reversed(nested))
    return f"{opens}{js_string(insert)}{closes}"


def _mark_attrs(value: Any) -> str:
    pairs: Iterable[tuple[str, Any]] = ()
    if isinstance(value, dict):
        pairs = value.items()
    elif isinstance(value, list):
        pairs = ((str(i), item) for i, item in enumerate(value))
    elif isinstance(value, str):
        units = value.encode("utf-16-le")
        pairs = (
            (str(i), units[2 * i : 2 * i + 2].decode("utf-16-le", "surrogatepass"))
            for i in range(len(units) // 2)
        )
    return "".join(f' {key}="{js_string(item)}"' for key, item in sorted(pairs))


def js_string(value: Any) -> str:
    """JavaScript's `String(value)` for the values a Yjs document holds."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return _js_number(float(value)) if isinstance(value, float) else str(value)
    if isinstance(value, list | tuple):
        return ",".join("" if item is None else js_string(item) for item in value)
    if isinstance(value, bytes | bytearray):
        return ",".join(str(byte) for byte in value)
    if isinstance(value, XmlFragment | XmlElement | XmlText):
        return xml_string(value)
    if isinstance(value, Text):
        return str(value)
    return "[object Object]"


def _js_number(value: float) -> str:
    """`Number.prototype.toString()`: shortest round-trip digits, exponent only outside
    [1e-6, 1e21)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value.is_integer() and abs(value) <= 2**53:
        return str(int(value))
    if 1e-6 <= abs(value) < 1e21:
        return format(Decimal(repr(value)), "f")
    return _EXPONENT.sub(r"e\1\2", repr(value))
