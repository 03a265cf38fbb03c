"""RoomDocument: the one place that touches a room's pycrdt Doc and presence states.

It wraps the Doc rather than subclassing it, so connections, locks and buffers never end
up on the CRDT object. Every update carries an origin tag, so updates replayed from
storage are never logged again.
"""

from __future__ import annotations

from typing import Any, Literal

from pycrdt import Doc, merge_updates

from engine.errors import ProtocolError, QuotaExceeded, UpdateRejected
from engine.update_scan import UpdateShape, scan_update
from engine.yjs import EMPTY_UPDATE, decode_state_vector

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
        self.doc: Doc[Any] = Doc()
        self.max_update_bytes = max_update_bytes
        self.max_doc_bytes = max_doc_bytes
        self.size_bytes = 0
        self.version = 0  # grows with every update that changes the document
        self._clocks: dict[int, int] = {}  # our own copy of the state vector
        self._pending: list[tuple[bytes, UpdateShape]] = []

    def apply(self, update: bytes, origin: Origin = "client") -> tuple[int, ...]:
        """Validate and apply one Yjs update (v1).

        Storage-origin updates skip the quotas: what is stored is the room, whatever the
        limits are today.

        Returns:
            The Yjs client ids that authored the update.

        Raises:
            QuotaExceeded: the update or the resulting room is too large; nothing applied.
            UpdateRejected: the update does not decode or apply; nothing applied.
        """
        size = len(update)
        if origin != "storage":
            self._check_quota(size)
        try:
            shape = scan_update(update)
        except ProtocolError as exc:
            raise UpdateRejected(f"update does not decode: {exc.reason}") from exc
        if update == EMPTY_UPDATE:
            return shape.clients
        self._apply_raw(update)
        self.size_bytes += size
        self.version += 1
        if not self._pending and shape.integrates_after(self._clocks):
            for client, (_start, end) in shape.ranges.items():
                if end > self._clocks.get(client, 0):
                    self._clocks[client] = end
        else:
            self._pending.append((update, shape))
            self._settle_pending()
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
            room._apply_whole(updates[0])
            rest = updates[1:]
        for update in rest:
            room.apply(update, "storage")
        return room

    def _apply_whole(self, snapshot: bytes) -> None:
        """Apply a snapshot known to integrate whole, without the scan: the clocks are
        then exactly the document's state vector."""
        self._apply_raw(snapshot)
        self._clocks = decode_state_vector(self.state_vector())
        self.size_bytes += len(snapshot)
        self.version += 1

    def _check_quota(self, size: int) -> None:
        if self.max_update_bytes is not None and size > self.max_update_bytes:
            raise QuotaExceeded(
                f"update of {size} bytes exceeds the limit of {self.max_update_bytes}"
            )
        if self.max_doc_bytes is not None and self.size_bytes + size > self.max_doc_bytes:
            raise QuotaExceeded(f"room would grow past its limit of {self.max_doc_bytes} bytes")

    def _apply_raw(self, update: bytes) -> None:
        try:
            self.doc.apply_update(update)
        except BaseException as exc:
            # pyo3 panics surface as PanicException, a BaseException; they are still
            # "this update is bad", not "stop the process".
            if not isinstance(exc, Exception) and type(exc).__name__ != "PanicException":
                raise
            raise UpdateRejected(f"update does not apply: {exc}") from exc

    def _settle_pending(self) -> None:
        """Re-apply updates that were waiting for a dependency until none makes progress.

        Yrs can leave a pending update unintegrated when several wait for the same
        missing one (three updates of one client applied in the order 2, 3, 1 keep 2
        pending); applying it again integrates it. Updates are idempotent, so retrying
        is always safe; the loop is bounded by the number of pending updates.
        """
        retried = False
        while True:
            self._clocks = decode_state_vector(self.state_vector())
            waiting = [
                (u, shape) for u, shape in self._pending if not shape.covered_by(self._clocks)
            ]
            progressed = len(waiting) < len(self._pending)
            self._pending = waiting
            if not waiting or (retried and not progressed):
                return
            for update, _shape in waiting:
                self.doc.apply_update(update)
            retried = True

    def encode_snapshot(self) -> bytes:
        """The whole room as one update, including updates still waiting for a
        dependency (a Doc's own encoding leaves those out).

        The Doc's encoding squashes runs of typing into single items, so a snapshot
        applies in milliseconds where a merge of raw updates takes seconds.
        """
        state = self.encode_state()
        if not self._pending:
            return state
        return bytes(merge_updates(state, *(update for update, _ in self._pending)))

    @property
    def client_count(self) -> int:
        """How many Yjs clients have authored this document (as far as integrated)."""
        return len(self._clocks)

    def state_vector(self) -> bytes:
        return bytes(self.doc.get_state())

    def diff(self, state_vector: bytes) -> bytes:
        """Everything this document has that a peer with `state_vector` lacks."""
        try:
            return bytes(self.doc.get_update(state_vector))
        except ValueError as exc:
            raise UpdateRejected(f"state vector does not decode: {exc}") from exc

    def encode_state(self) -> bytes:
        return bytes(self.doc.get_update())


def rebuild(updates: list[bytes]) -> bytes:
    """Fold updates into one compact update, keeping any that still wait for a
    dependency (see `RoomDocument.encode_snapshot`). The DocStore takes this as its
    `rebuild` function, so storage itself never builds documents."""
    return rebuild_whole(updates)[0]


def rebuild_whole(updates: list[bytes]) -> tuple[bytes, bool]:
    """`rebuild`, and whether every struct integrated (see `Snapshot.whole`)."""
    room = RoomDocument.from_stored(updates)
    return room.encode_snapshot(), not room._pending
