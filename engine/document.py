"""RoomDocument: the one place that touches a room's pycrdt Doc and presence states.

It wraps the Doc rather than subclassing it, so connections, locks and buffers never end
up on the CRDT object. Every update carries an origin tag, so updates replayed from
storage are never logged again.
"""

from __future__ import annotations

from typing import Any, Literal

from pycrdt import Doc

from engine.awareness import Presence
from engine.errors import ProtocolError, QuotaExceeded, UpdateRejected
from engine.update_scan import scan_update
from engine.yjs import EMPTY_UPDATE

Origin = Literal["client", "storage", "local"]


class RoomDocument:
    """A room's CRDT document and who is present in it.

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
        self.presence = Presence()
        self.max_update_bytes = max_update_bytes
        self.max_doc_bytes = max_doc_bytes
        self.size_bytes = 0

    def apply(self, update: bytes, origin: Origin = "client") -> tuple[int, ...]:
        """Validate and apply one Yjs update (v1).

        Storage-origin updates skip the quotas and the structure walk: what is stored is
        the room, whatever the limits are today.

        Returns:
            The Yjs client ids that authored the update (empty for storage updates).

        Raises:
            QuotaExceeded: the update or the resulting room is too large; nothing applied.
            UpdateRejected: the update does not decode or apply; nothing applied.
        """
        size = len(update)
        if origin != "storage":
            if self.max_update_bytes is not None and size > self.max_update_bytes:
                raise QuotaExceeded(
                    f"update of {size} bytes exceeds the limit of {self.max_update_bytes}"
                )
            if self.max_doc_bytes is not None and self.size_bytes + size > self.max_doc_bytes:
                raise QuotaExceeded(f"room would grow past its limit of {self.max_doc_bytes} bytes")
        clients: tuple[int, ...] = ()
        if origin != "storage":
            try:
                clients = scan_update(update)
            except ProtocolError as exc:
                raise UpdateRejected(f"update does not decode: {exc.reason}") from exc
        if update == EMPTY_UPDATE:
            return clients
        try:
            self.doc.apply_update(update)
        except BaseException as exc:
            # pyo3 panics surface as PanicException, a BaseException; they are still
            # "this update is bad", not "stop the process".
            if not isinstance(exc, Exception) and type(exc).__name__ != "PanicException":
                raise
            raise UpdateRejected(f"update does not apply: {exc}") from exc
        self.size_bytes += size
        return clients

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
