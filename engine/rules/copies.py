"""Typed copies of protected parts of a document: plain values that remember which parts
were shared types, so a deleted or overwritten part can be put back as it was (a map as a
map, a text as a text), on the live document, by the server."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pycrdt import Array, Map, Text

MISSING: Any = object()  # no such entry (before an insert, after a delete)


@dataclass(slots=True)
class MapCopy:
    items: dict[str, Any]


@dataclass(slots=True)
class ArrayCopy:
    items: list[Any]


@dataclass(slots=True)
class TextCopy:
    text: str


def copy_of(value: Any) -> Any:
    """A copy of a value that remembers which parts were shared types."""
    if isinstance(value, Map):
        return MapCopy({key: copy_of(item) for key, item in value.items()})
    if isinstance(value, Array):
        return ArrayCopy([copy_of(item) for item in value])
    if isinstance(value, Text):
        return TextCopy(str(value))
    return value


def prelim(copy: Any) -> Any:
    """A new value (shared types as preliminary ones) equal to a copy."""
    if isinstance(copy, MapCopy):
        return Map({key: prelim(item) for key, item in copy.items.items()})
    if isinstance(copy, ArrayCopy):
        return Array([prelim(item) for item in copy.items])
    if isinstance(copy, TextCopy):
        return Text(copy.text)
    return copy


def field_of(copy: Any, key: Any) -> Any:
    """`copy[key]` (a map's key or an array's index), MISSING when there is none."""
    if isinstance(copy, MapCopy) and isinstance(key, str):
        return copy.items.get(key, MISSING)
    if isinstance(copy, ArrayCopy) and isinstance(key, int) and 0 <= key < len(copy.items):
        return copy.items[key]
    return MISSING
