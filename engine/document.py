"""RoomDocument: a room's live document, its quotas and its version.

It wraps a `LiveDoc` (which applies updates in any order and keeps what is still pending)
rather than subclassing pycrdt's Doc, so connections, locks and buffers never end up on
the CRDT object. Every update carries an origin tag, so updates replayed from storage are
never logged again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pycrdt import Doc

from engine.errors import ProtocolError, QuotaExceeded, UpdateRejected
from engine.live_doc import LiveDoc
from engine.update_scan import UpdateShape, scan_update
from engine.yjs import EMPTY_UPDATE

Origin = Literal["client", "storage", "local"]


class RoomDocument:
    """A room's CRDT document.

    Args:
        max_update_bytes: reject a single update larger than this (None: no limit).
        max_doc_bytes: reject an update that would grow the room past this many bytes of
            stored updates (None: no limit). Counted from update sizes, which is what the
            room costs on disk and on a fresh client's first sync.
    """

    def __init__(
        self, *, max_update_bytes: int | None = None, max_doc_bytes: int | None = None
    ) -> None:
        self.live = LiveDoc()
        self.max_update_bytes = max_update_bytes
        self.max_doc_bytes = max_doc_bytes
        self.size_bytes = 0
        self.version = 0  # grows with every update that changes the document

    @property
    def doc(self) -> Doc[Any]:
        """The pycrdt Doc (the actor alone touches it)."""
        return self.live.doc

    @property
    def pending(self) -> tuple[bytes, ...]:
        """Updates still waiting for a dependency (see `LiveDoc`)."""
        return self.live.pending

    def apply(
        self, update: bytes, origin: Origin = "client", shape: UpdateShape | None = None
    ) -> tuple[int, ...]:
        """Validate and apply one Yjs update (v1).

        Storage-origin updates skip the quotas: what is stored is the room, whatever the
        limits are today. `shape`: the update's `scan_update`, when the caller already
        walked it (the room's guard scans every client update before it is applied).

        Returns:
            The Yjs client ids that authored the update.

        Raises:
            QuotaExceeded: the update or the resulting room is too large; nothing applied.
            UpdateRejected: the update does not decode or apply; nothing applied.
        """
        size = len(update)
        if origin != "storage":
            self._check_quota(size)
        if shape is None:
            try:
                shape = scan_update(update)
            except ProtocolError as exc:
                raise UpdateRejected(f"update does not decode: {exc.reason}") from exc
        if update == EMPTY_UPDATE:
            return shape.clients
        self.live.apply(update, shape)
        self.size_bytes += size
        self.version += 1
        return shape.clients

    @classmethod
    def from_stored(
        cls,
        updates: list[bytes],
        *,
        max_update_bytes: int | None = None,
        max_doc_bytes: int | None = None,
        whole_snapshot: bool = False,
    ) -> RoomDocument:
        """A document rebuilt from what storage holds (a snapshot and the log after it).

        `whole_snapshot`: `updates[0]` is a snapshot stored as whole (every struct of it
        integrated when it was made), so it is applied without the scan every other
        update gets, which for a big room was most of the load.

        Meant to run in a worker thread, so a large room loads beside the event loop; the
        loop still waits while one pycrdt call holds the GIL (the snapshot's apply). The
        caller hands the finished document to the loop's thread and uses it only there.
        """
        room = cls(max_update_bytes=max_update_bytes, max_doc_bytes=max_doc_bytes)
        rest = updates
        if whole_snapshot and updates:
            room.live.apply_whole(updates[0])
            room.size_bytes += len(updates[0])
            room.version += 1
            rest = updates[1:]
        for update in rest:
            room.apply(update, "storage")
        return room

    def _check_quota(self, size: int) -> None:
        if self.max_update_bytes is not None and size > self.max_update_bytes:
            raise QuotaExceeded(
                f"update of {size} bytes exceeds the limit of {self.max_update_bytes}"
            )
        if self.max_doc_bytes is not None and self.size_bytes + size > self.max_doc_bytes:
            raise QuotaExceeded(f"room would grow past its limit of {self.max_doc_bytes} bytes")

    def encode_snapshot(self) -> bytes:
        """The whole room as one update, including updates still waiting for a
        dependency (a Doc's own encoding leaves those out).

        The Doc's encoding squashes runs of typing into single items, so a snapshot
        applies in milliseconds where a merge of raw updates takes seconds.
        """
        return self.live.encode_snapshot()

    @property
    def clocks(self) -> Mapping[int, int]:
        """Per Yjs client id, the clock up to which its structs are integrated (the rules
        judge only structs past it, what is new to the room); see `LiveDoc.clocks`."""
        return self.live.clocks

    @property
    def client_count(self) -> int:
        """How many Yjs clients have authored this document (as far as integrated)."""
        return len(self.live.clocks)

    def state_vector(self) -> bytes:
        return self.live.state_vector()

    def diff(self, state_vector: bytes) -> bytes:
        """Everything this document has that a peer with `state_vector` lacks, updates
        still waiting for a dependency included (a joiner must get them too)."""
        return self.live.diff(state_vector)

    def encode_state(self) -> bytes:
        """The integrated state (pending updates left out; see `encode_snapshot`)."""
        return self.live.encode_state()


def rebuild(updates: list[bytes]) -> bytes:
    """Fold updates into one compact update, keeping any that still wait for a
    dependency (see `RoomDocument.encode_snapshot`). The DocStore takes this as its
    `rebuild` function, so storage itself never builds documents."""
    return rebuild_whole(updates)[0]


def rebuild_whole(updates: list[bytes], *, whole_snapshot: bool = False) -> tuple[bytes, bool]:
    """`rebuild`, and whether every struct integrated (see `Snapshot.whole`).
    `whole_snapshot`: as for `RoomDocument.from_stored`."""
    room = RoomDocument.from_stored(updates, whole_snapshot=whole_snapshot)
    return room.encode_snapshot(), not room.pending
