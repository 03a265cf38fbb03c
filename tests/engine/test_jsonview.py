"""The JSON view against Yjs itself: documents written by Yjs read as Yjs shows them, and
documents written by pycrdt read by Yjs (js/jsonview.mjs in tests/interop) give the same
JSON as ours."""

from __future__ import annotations

import json
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Array, Doc, Map, Text, XmlElement, XmlFragment, XmlText

from engine.errors import ProtocolError
from engine.jsonview import js_string, root_types, to_json
from tests.conftest import require_node

INTEROP_DIR = Path(__file__).resolve().parents[1] / "interop"
NODE_TIMEOUT = 60.0
EMPTY: tuple[object, ...] = ("", [], {})


def _run_node(docs: list[dict[str, Any]]) -> Any:
    node = require_node()
    result = subprocess.run(
        [node, str(INTEROP_DIR / "js" / "jsonview.mjs")],
        input=json.dumps({"docs": docs}).encode(),
        capture_output=True,
        timeout=NODE_TIMEOUT,
        check=False,
        cwd=INTEROP_DIR,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return json.loads(result.stdout)


@cache
def _yjs_built() -> list[dict[str, Any]]:
    built: list[dict[str, Any]] = _run_node([])["built"]
    return built


def _rich_pycrdt_doc() -> bytes:
    """Every kind of root and value pycrdt writes, from two clients."""
    doc: Doc[Any] = Doc(client_id=1)
    text = doc.get("text", type=Text)
    text += "Hello, wörld 😀!"
    text.format(0, 5, {"bold": True, "size": 12})
    text.insert_embed(5, {"image": "a.png"}, {"width": 2.5})
    del text[7:9]
    items = doc.get("items", type=Array)
    items.extend([1, 2.5, "s", None, True, {"k": [1, {"z": None}]}, [3, 4]])
    items.append(Map({"id": 7, "tags": Array(["x"])}))
    items.append(Text("inner"))
    del items[1]
    settings = doc.get("settings", type=Map)
    settings["a"] = 1
    settings["a"] = -(2**40)
    settings["nested"] = Map({"list": Array([Map({"deep": Text("d")})])})
    fragment = doc.get("xml", type=XmlFragment)
    heading = fragment.children.append(XmlElement("H1", {"id": "top"}))
    heading.attributes["level"] = 1.0
    heading.children.append("Title")
    para = fragment.children.append(XmlElement("p"))
    run: XmlText = para.children.append("plain bold link")
    run.format(6, 10, {"strong": True})
    run.format(11, 15, {"link": {"href": "u", "rel": None}, "code": "ab"})
    fragment.children.append("loose text")
    other: Doc[Any] = Doc(client_id=2)
    other.apply_update(doc.get_update())
    other.get("text", type=Text).insert(3, "--")
    other.get("settings", type=Map)["b"] = [True]
    doc.apply_update(other.get_update(doc.get_state()))
    emptied = doc.get("emptied", type=Array)
    emptied.append(1)
    del emptied[0]
    return doc.get_update()


@pytest.mark.parametrize("case", ["formattedText", "nested", "prosemirror", "concurrent"])
def test_documents_written_by_yjs_read_as_yjs_shows_them(case: str) -> None:
    built = next(entry for entry in _yjs_built() if entry["name"] == case)
    state = bytes.fromhex(built["update"])
    shown = {name: value for name, value in built["json"].items() if value not in EMPTY}
    assert to_json(state) == shown
    assert root_types(state) == {name: built["roots"][name] for name in shown}


def test_documents_written_by_pycrdt_read_as_yjs_reads_them() -> None:
    state = _rich_pycrdt_doc()
    kinds = root_types(state)
    assert kinds == {"text": "text", "items": "array", "settings": "map", "xml": "xml"}
    (theirs,) = _run_node([{"update": state.hex(), "roots": kinds}])["read"]
    assert to_json(state) == theirs
    assert "<strong>bold</strong>" in theirs["xml"]


def test_a_root_with_nothing_visible_is_left_out_unless_named() -> None:
    doc: Doc[Any] = Doc()
    text = doc.get("t", type=Text)
    text += "gone"
    del text[:]
    doc.get("m", type=Map)["k"] = 1
    del doc.get("m", type=Map)["k"]
    state = doc.get_update()
    assert to_json(state) == {}
    assert to_json(state, {"t": "text", "m": "map", "never": "array"}) == {
        "t": "",
        "m": {},
        "never": [],
    }


def test_types_override_the_inferred_type() -> None:
    doc: Doc[Any] = Doc()
    doc.get("t", type=Text).insert(0, "abc")
    doc.get("a", type=Array).append(1)
    assert to_json(doc.get_update(), {"a": "array"}) == {"t": "abc", "a": [1]}


def test_an_unknown_type_name_is_a_value_error_naming_root_and_choices() -> None:
    with pytest.raises(ValueError, match=r"'tree' for root 'a'.*text, array, map, xml"):
        to_json(b"\x00\x00", {"a": "tree"})


def test_an_empty_update_has_no_roots() -> None:
    assert to_json(b"\x00\x00") == {}
    assert root_types(b"\x00\x00") == {}


def test_a_truncated_state_raises_protocol_error() -> None:
    state = _rich_pycrdt_doc()
    with pytest.raises(ProtocolError):
        to_json(state[: len(state) // 2])


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (1.0, "1"),
        (0.1 + 0.2, "0.30000000000000004"),
        (1e21, "1e+21"),
        (1e-7, "1e-7"),
        (0.00001, "0.00001"),
        (float(2**60), "1152921504606847000"),
        (float("nan"), "NaN"),
        ([1, None, "a"], "1,,a"),
        ({"a": 1}, "[object Object]"),
        (None, "null"),
        (False, "false"),
    ],
)
def test_xml_attribute_values_print_as_javascript_strings(value: Any, shown: str) -> None:
    assert js_string(value) == shown
