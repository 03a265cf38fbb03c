"""A pycrdt Map's entries in one read.

pycrdt's `Map.items()` opens a transaction per key and checks each key with a second
lookup (`__getitem__` -> `__contains__`), so reading a room of 20,000 small maps costs
hundreds of thousands of round trips into Rust. Restore and the JSON view read every
entry of every map; this reads a map's keys and values under one transaction, the way
`items()` itself wraps each value. Should pycrdt change the internals this relies on,
it falls back to `items()`.
"""

from __future__ import annotations

from typing import Any

from pycrdt import Map

_PLAIN = (str, int, float, bool, type(None), bytes, dict, list)  # stored values, not types


def map_items(value: Map[Any]) -> list[tuple[str, Any]]:
    """The (key, value) pairs of `value`, nested shared types wrapped as pycrdt does."""
    doc = value.doc
    open_txn = getattr(getattr(doc, "_txn", None), "_txn", None)
    if open_txn is not None:  # inside the caller's transaction: read through it
        return _read(value, open_txn)
    with doc.transaction() as txn:
        raw = getattr(txn, "_txn", None)
        if raw is None:  # pragma: no cover - another pycrdt layout
            return list(value.items())
        return _read(value, raw)


def _read(value: Map[Any], raw: Any) -> list[tuple[str, Any]]:
    wrap = getattr(value, "_maybe_as_type_or_doc", None)
    if wrap is None:  # pragma: no cover - another pycrdt layout
        return list(value.items())
    integrated = value.integrated
    pairs = [(key, integrated.get(raw, key)) for key in integrated.keys(raw)]
    return [(key, item if type(item) in _PLAIN else wrap(item)) for key, item in pairs]
