"""The `type` rule: a root keeps its type.

Yjs updates do not say what type a root is; a client that reads `messages` as a text
writes string structs whose parent is the root `messages`, one that reads it as a map
writes structs with a key (`parent_sub`). This module reads the heads of an update's new
structs (engine/update_scan.py) and says whether any of them sits directly in a typed
root with a shape that root's type cannot hold.

Such an update is refused before it is applied (4400), not undone: undoing it would leave
deleted structs in the root that later structs can continue from (Yjs derives a struct's
parent from its origin, so a continuation carries no parent to judge). Refused whole, the
room never holds them, and a continuation waits for a missing dependency, which rooms with
rules refuse too. The sender is a client that uses the room's schema wrongly; it is told
why in the close reason.

One shape cannot be placed from the update alone: characters inserted next to an existing
item (their parent comes from that item, which may be a message's text or the root). For
an array root, `check_types` reports that the update holds such characters and the root's
observer removes any character that lands in the root itself (an undo, like other rules).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from engine.errors import ProtocolError, UpdateRejected
from engine.rules.model import PartRule
from engine.update_scan import StructHead, iter_structs
from engine.update_shape import TEXT_KINDS as _TEXT_ONLY
from engine.update_shape import RootRefs

_NO_PARENT = (0, 1, 10)  # GC, deleted content, skip: fit any type


def typed_roots(rules: Iterable[PartRule]) -> dict[str, str]:
    """root -> the type a rule says it keeps."""
    return {rule.root: rule.type for rule in rules if rule.type is not None}


def check_types(
    update: bytes,
    roots: Mapping[str, str],
    clocks: Mapping[int, int],
    refs: RootRefs | None = None,
) -> bool:
    """Raises UpdateRejected ("rule: ROOT must stay a TYPE") when a new struct of the
    update would sit in a typed root as something that type cannot hold. A malformed
    update passes: applying it reports what is wrong.

    Returns whether the update holds characters whose parent it does not say (see above).

    `refs`: the update's `UpdateShape.refs`, from the scan the update already had. When
    its structs name no typed root, none of them can sit in one (a struct continuing
    from another of the update sits where that one does), so the answer is read from
    `refs` alone: a keystroke into a text, or a message appended after another, is not
    walked again.
    """
    if not roots:
        return False
    if refs is not None and roots.keys().isdisjoint(refs.named):
        for client, end in refs.unplaced_text.items():
            if end > clocks.get(client, 0):
                return True
        return False
    loose = False
    placed: list[tuple[int, int, int, str]] = []  # client, start, end, root
    try:
        for head in iter_structs(update):
            if head.kind in _NO_PARENT or head.clock + head.length <= clocks.get(head.client, 0):
                continue
            root = _root_of(head, placed)
            if root is None and head.parent is None and head.kind in _TEXT_ONLY:
                loose = True
            if root is None or root not in roots:
                continue
            placed.append((head.client, head.clock, head.clock + head.length, root))
            if not _fits(head, roots[root]):
                raise UpdateRejected(must_stay(root, roots[root]))
    except ProtocolError:
        return False
    return loose


def _root_of(head: StructHead, placed: list[tuple[int, int, int, str]]) -> str | None:
    """The root a struct sits in directly: its parent, or (continuing) the root of a
    struct of this update it is inserted next to."""
    if isinstance(head.parent, str):
        return head.parent
    if head.parent is not None:
        return None  # inside a nested type
    for neighbour in (head.origin, head.right_origin):
        if neighbour is None:
            continue
        client, clock = neighbour
        for owner, start, end, root in placed:
            if owner == client and start <= clock < end:
                return root
    return None


def must_stay(root: str, kind: str) -> str:
    """The reason a refusal of the `type` rule gives."""
    return f"rule: {root} must stay {_article(kind)}"


def _fits(head: StructHead, kind: str) -> bool:
    keyed = head.parent_sub is not None
    if kind == "map":
        return keyed
    if kind == "array" or kind == "xml":
        return not keyed and head.kind not in _TEXT_ONLY
    return not keyed  # text: characters, formats, embeds


def _article(kind: str) -> str:
    return {"array": "an array", "map": "a map", "text": "a text", "xml": "an xml fragment"}[kind]
