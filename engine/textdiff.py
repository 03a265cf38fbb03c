"""Diffs for restoring content: edit scripts over sequences, and rich text as a diffable
string with its formatting runs and embeds.

difflib alone is quadratic on long inputs of few distinct symbols (characters), so the
common ends are trimmed first (a one-character change costs no diff at all), large
texts are diffed by lines first, and only spans small enough are diffed by characters;
a span too large for that is replaced whole, which is correct, only less minimal.

difflib is also quadratic in the number of changed blocks (each block scans the rest),
so long sequences of elements or lines with many scattered changes are diffed the
patience way instead: elements that occur once on each side are matched in order (a
longest increasing subsequence, n log n) and only the gaps between them are diffed.
"""

from __future__ import annotations

import json
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Hashable, Iterator, Sequence
from difflib import SequenceMatcher
from typing import Any, TypeVar

from pycrdt import Text, XmlText

from engine.jsonview import plain_json

CHAR_DIFF_CELLS = 4_000_000  # len(a) * len(b) up to which characters are diffed directly
SEQUENCE_DIFF_CELLS = 250_000  # above this, sequences are diffed by unique anchors first
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
    if len(a) == 1 and len(b) == 1:  # one for one, as between anchors: no matcher needed
        return [("equal" if a[0] == b[0] else "replace", at_a, at_a + 1, at_b, at_b + 1)]
    if isinstance(a, str) and isinstance(b, str) and len(a) * len(b) > CHAR_DIFF_CELLS:
        return _by_lines(a, b, at_a, at_b)
    if not isinstance(a, str) and len(a) * len(b) > SEQUENCE_DIFF_CELLS:
        return _anchored(list(a), list(b), at_a, at_b)
    matcher = SequenceMatcher(None, a, b, autojunk=not isinstance(a, str))
    return [
        (tag, i1 + at_a, i2 + at_a, j1 + at_b, j2 + at_b)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes()
    ]


def _anchored(a: list[Hashable], b: list[Hashable], at_a: int, at_b: int) -> list[Op]:
    """Patience diff: elements unique on both sides, matched in order, split the
    sequences into gaps; a gap small enough is diffed by difflib, a larger one (no
    anchor inside it) is replaced whole."""
    ops: list[Op] = []
    i0 = j0 = 0
    for i, j in [*_anchors(a, b), (len(a), len(b))]:
        gap_a, gap_b = a[i0:i], b[j0:j]
        if len(gap_a) * len(gap_b) <= SEQUENCE_DIFF_CELLS:
            ops += _middle(gap_a, gap_b, i0 + at_a, j0 + at_b)
        else:
            ops.append(("replace", i0 + at_a, i + at_a, j0 + at_b, j + at_b))
        if i < len(a):
            _append_equal(ops, i + at_a, j + at_b)
        i0, j0 = i + 1, j + 1
    return ops


def _anchors(a: list[Hashable], b: list[Hashable]) -> list[tuple[int, int]]:
    """(i, j) pairs of elements occurring once in `a` and once in `b`, the longest run
    of them in the same order on both sides."""
    count_a, count_b = Counter(a), Counter(b)
    where_b = {x: j for j, x in enumerate(b) if count_b[x] == 1}
    pairs = [(i, where_b[x]) for i, x in enumerate(a) if count_a[x] == 1 and x in where_b]
    tails: list[int] = []  # tails[k]: smallest j ending an increasing run of length k+1
    ends: list[int] = []  # index into pairs of that run's last pair
    previous = [-1] * len(pairs)
    for index, (_, j) in enumerate(pairs):
        k = bisect_left(tails, j)
        previous[index] = ends[k - 1] if k else -1
        if k == len(tails):
            tails.append(j)
            ends.append(index)
        else:
            tails[k], ends[k] = j, index
    run: list[tuple[int, int]] = []
    index = ends[-1] if ends else -1
    while index >= 0:
        run.append(pairs[index])
        index = previous[index]
    return run[::-1]


def _append_equal(ops: list[Op], i: int, j: int) -> None:
    """Add a one-element match, merged into the previous match when adjacent."""
    if ops and ops[-1][0] == "equal" and ops[-1][2] == i and ops[-1][4] == j:
        _, i1, _, j1, _ = ops[-1]
        ops[-1] = ("equal", i1, i + 1, j1, j + 1)
    else:
        ops.append(("equal", i, i + 1, j, j + 1))


def _by_lines(a: str, b: str, at_a: int, at_b: int) -> list[Op]:
    """Diff by lines, then by characters inside changed blocks that are small enough."""
    lines_a, lines_b = a.splitlines(keepends=True), b.splitlines(keepends=True)
    starts_a, starts_b = _starts(lines_a), _starts(lines_b)
    ops: list[Op] = []
    for tag, i1, i2, j1, j2 in _middle(lines_a, lines_b, 0, 0):
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
