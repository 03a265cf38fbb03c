"""Diffs for restoring content: edit scripts over sequences, and rich text as a diffable
string with its formatting runs and embeds.

difflib alone is quadratic on long inputs of few distinct symbols (characters), so the
common ends are trimmed first (a one-character change costs no diff at all), large
texts are diffed by lines first, and only spans small enough are diffed by characters;
a span too large for that is replaced whole, which is correct, only less minimal.
"""

from __future__ import annotations

import json
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Hashable, Iterator, Sequence
from difflib import SequenceMatcher
from typing import Any, TypeVar

from pycrdt import Text, XmlText

from engine.jsonview import plain_json

CHAR_DIFF_CELLS = 4_000_000  # len(a) * len(b) up to which characters are diffed directly
_PLACEHOLDERS = range(0x100000, 0x10FFFE)  # Supplementary Private Use Area-B
_CHECKPOINT = 1 << 16

Op = tuple[str, int, int, int, int]
S = TypeVar("S", str, Sequence[Hashable])


def canonical(value: Any) -> str:
    """A stored value as sorted-key JSON, so equal JSON compares equal (and `1` differs
    from `true`, which Python's `==` would not tell apart)."""
    if not value and isinstance(value, dict):
        return "{}"  # most text runs: no formatting
    return json.dumps(plain_json(value), sort_keys=True)


def opcodes(a: S, b: S) -> list[Op]:
    """difflib-style opcodes turning `a` into `b` (strings or lists of hashables)."""
    n, m = len(a), len(b)
    prefix = _common(a, b, min(n, m), lambda k: a[:k] == b[:k])
    rest = min(n, m) - prefix
    suffix = _common(a, b, rest, lambda k: a[n - k :] == b[m - k :])
    ops: list[Op] = [("equal", 0, prefix, 0, prefix)] if prefix else []
    ops += _middle(a[prefix : n - suffix], b[prefix : m - suffix], prefix, prefix)
    if suffix:
        ops.append(("equal", n - suffix, n, m - suffix, m))
    return ops


def _common(a: Any, b: Any, limit: int, same: Callable[[int], bool]) -> int:
    """The longest k <= limit with same(k), by bisection over slice comparisons (which
    run in C, unlike a character loop)."""
    low, high = 0, limit
    while low < high:
        mid = (low + high + 1) // 2
        if same(mid):
            low = mid
        else:
            high = mid - 1
    return low


def _middle(a: S, b: S, at_a: int, at_b: int) -> list[Op]:
    if not a or not b:
        if not a and not b:
            return []
        return [("delete" if a else "insert", at_a, at_a + len(a), at_b, at_b + len(b))]
    if isinstance(a, str) and isinstance(b, str) and len(a) * len(b) > CHAR_DIFF_CELLS:
        return _by_lines(a, b, at_a, at_b)
    matcher = SequenceMatcher(None, a, b, autojunk=not isinstance(a, str))
    return [
        (tag, i1 + at_a, i2 + at_a, j1 + at_b, j2 + at_b)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes()
    ]


def _by_lines(a: str, b: str, at_a: int, at_b: int) -> list[Op]:
    """Diff by lines, then by characters inside changed blocks that are small enough."""
    lines_a, lines_b = a.splitlines(keepends=True), b.splitlines(keepends=True)
    starts_a, starts_b = _starts(lines_a), _starts(lines_b)
    ops: list[Op] = []
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, lines_a, lines_b).get_opcodes():
        s1, s2, t1, t2 = starts_a[i1], starts_a[i2], starts_b[j1], starts_b[j2]
        if tag == "equal":
            ops.append(("equal", s1 + at_a, s2 + at_a, t1 + at_b, t2 + at_b))
        elif tag == "replace" and (s2 - s1) * (t2 - t1) <= CHAR_DIFF_CELLS:
            ops += _middle(a[s1:s2], b[t1:t2], s1 + at_a, t1 + at_b)
        else:
            ops.append((tag, s1 + at_a, s2 + at_a, t1 + at_b, t2 + at_b))
    return ops


def _starts(lines: list[str]) -> list[int]:
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    return starts


class RichText:
    """A Text's content as one string (each embed a private-use placeholder character),
    its formatting runs, and pycrdt offsets (UTF-8 bytes; an embed counts one)."""

    def __init__(
        self,
        delta: list[tuple[Any, dict[str, Any]]],
        marks: dict[Hashable, str],
        embed_key: Callable[[Any], Hashable],
    ) -> None:
        parts: list[str] = []
        self.runs: list[tuple[int, int, dict[str, Any]]] = []
        self.embeds: dict[int, Any] = {}  # position -> embedded value
        at = 0
        for insert, attrs in delta:
            if isinstance(insert, str):
                parts.append(insert)
            else:
                parts.append(marks[embed_key(insert)])
                self.embeds[at] = insert
            self.runs.append((at, at + len(parts[-1]), attrs))
            at += len(parts[-1])
        self.chars = "".join(parts)
        self.starts = [start for start, _stop, _attrs in self.runs]
        self.embed_at = sorted(self.embeds)
        self._ascii = self.chars.isascii()
        self._checkpoints = [] if self._ascii else self._checkpoint_offsets()

    @staticmethod
    def pair(
        current: Text | XmlText,
        target: Text | XmlText,
        embed_key: Callable[[Any], Hashable] = canonical,
    ) -> tuple[RichText, RichText]:
        """Both texts, with embeds of equal `embed_key` given the same placeholder and
        no placeholder that either text holds as a character."""
        have, want = chunks(current), chunks(target)
        keys = {embed_key(i): None for i, _a in have + want if not isinstance(i, str)}
        marks: dict[Hashable, str] = {}
        if keys:
            used: set[str] = set().union(*(i for i, _a in have + want if isinstance(i, str)))
            free = (chr(c) for c in _PLACEHOLDERS if chr(c) not in used)
            marks = dict(zip(keys, free, strict=False))
            if len(marks) < len(keys):
                raise ValueError("more distinct embeds than private-use characters")
        return RichText(have, marks, embed_key), RichText(want, marks, embed_key)

    def _checkpoint_offsets(self) -> list[int]:
        points = [0]
        for start in range(_CHECKPOINT, len(self.chars) + 1, _CHECKPOINT):
            points.append(points[-1] + self._bytes(start - _CHECKPOINT, start))
        return points

    def _bytes(self, start: int, stop: int) -> int:
        embeds = bisect_left(self.embed_at, stop) - bisect_left(self.embed_at, start)
        return len(self.chars[start:stop].encode()) - 3 * embeds  # a placeholder is 4 bytes

    def offset(self, index: int) -> int:
        """The pycrdt index of character `index`."""
        if self._ascii:
            return index
        base = index // _CHECKPOINT
        return self._checkpoints[base] + self._bytes(base * _CHECKPOINT, index)

    def _runs_in(self, start: int, stop: int) -> Iterator[tuple[int, int, dict[str, Any]]]:
        k = max(bisect_right(self.starts, start) - 1, 0)
        while k < len(self.runs) and self.runs[k][0] < stop:
            run_start, run_stop, attrs = self.runs[k]
            yield max(run_start, start), min(run_stop, stop), attrs
            k += 1

    def format_changes(
        self, want: RichText, i1: int, i2: int, j1: int
    ) -> list[tuple[int, int, dict[str, Any]]]:
        """Formatting to apply to our kept span [i1, i2) so it matches `want`'s span
        starting at j1: (start, stop, attributes; None removes one)."""
        shift = j1 - i1
        mine = list(self._runs_in(i1, i2))
        theirs = [(s - shift, e - shift, a) for s, e, a in want._runs_in(j1, j1 + i2 - i1)]
        changes: list[tuple[int, int, dict[str, Any]]] = []
        a = b = 0
        at = i1
        while at < i2:
            stop = min(mine[a][1], theirs[b][1])
            delta = attr_delta(mine[a][2], theirs[b][2])
            if delta and changes and changes[-1][1] == at and _same(changes[-1][2], delta):
                changes[-1] = (changes[-1][0], stop, delta)
            elif delta:
                changes.append((at, stop, delta))
            a += mine[a][1] == stop
            b += theirs[b][1] == stop
            at = stop
        return changes

    def pieces(self, start: int, stop: int) -> Iterator[tuple[Any, dict[str, Any]]]:
        """Our content in [start, stop) as strings and embedded values, each with its
        attributes (a fresh dict: an empty one inserts unformatted text)."""
        for run_start, run_stop, attrs in self._runs_in(start, stop):
            if run_start in self.embeds:
                yield self.embeds[run_start], dict(attrs)
            else:
                yield self.chars[run_start:run_stop], dict(attrs)


def chunks(text: Text | XmlText) -> list[tuple[Any, dict[str, Any]]]:
    """The text's delta with adjacent strings of equal formatting merged (how Yrs splits
    runs depends on how the text was typed, not on its content)."""
    merged: list[tuple[Any, dict[str, Any]]] = []
    strings: list[str] = []
    merged_attrs: dict[str, Any] = {}
    last = ""
    for insert, attrs in text.diff():
        attrs = attrs or {}
        key = canonical(attrs)
        if strings and not (isinstance(insert, str) and key == last):
            merged.append(("".join(strings), merged_attrs))
            strings = []
        if isinstance(insert, str):
            strings.append(insert)
            merged_attrs, last = attrs, key
        else:
            merged.append((insert, attrs))
    if strings:
        merged.append(("".join(strings), merged_attrs))
    return merged


def attr_delta(have: dict[str, Any], want: dict[str, Any]) -> dict[str, Any]:
    """Attributes that turn formatting `have` into `want` (None removes one)."""
    delta = {k: v for k, v in want.items() if k not in have or canonical(have[k]) != canonical(v)}
    delta.update({k: None for k in have if k not in want})
    return delta


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return canonical(a) == canonical(b)
