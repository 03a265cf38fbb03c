"""The local document and its store, as the sync session sees it.

Every change is written to the local store before anything else happens to it: a local
edit before it can be sent, a remote update right after it is applied. The document is
rebuilt from the store on start, so edits made with no server survive a restart.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pycrdt import Doc, TransactionEvent

from engine.client.errors import ClientClosed
from engine.client.local_store import LocalStore
from engine.errors import StorageError, UpdateRejected
from engine.live_doc import LiveDoc
from engine.yjs import EMPTY_UPDATE

LocalEdit = Callable[[bytes, int], None]


class Replica:
    """A pycrdt Doc backed by a `LocalStore`; implements `engine.session.Replica`.

    Remote updates go through a `LiveDoc`, so they integrate whatever order they arrive
    in, and what still waits for a dependency is known (`pending_since`).

    Args:
        store: where the replica lives; loaded now.
        on_local_edit: called with (update, mark) after each local edit is stored.

    Attributes:
        doc: the pycrdt Doc.
        pending_mark: the mark of the newest edit not yet known to be on the server (0: none).
    """

    def __init__(self, store: LocalStore, on_local_edit: LocalEdit) -> None:
        self.store = store
        self.live = LiveDoc()
        self.doc: Doc[Any] = self.live.doc
        state = store.load()
        if state is not None:
            try:
                self.live.apply(state)
            except UpdateRejected as exc:
                raise StorageError(f"{store.key}: the stored replica does not apply") from exc
        self.pending_mark = store.last_seq if store.last_seq > store.confirmed else 0
        self.closed = False
        self._on_local_edit = on_local_edit
        self._applying_remote = False
        self._subscription = self.doc.observe(self._on_change)

    @property
    def confirmed(self) -> int:
        return self.store.confirmed

    @property
    def saved(self) -> bool:
        """Every local edit so far is durable on the server."""
        return self.store.confirmed >= self.pending_mark

    def confirm(self, mark: int) -> None:
        """Everything up to `mark` is durable on the server."""
        if mark > self.store.confirmed:
            self.store.set_confirmed(mark)

    def close(self) -> None:
        """Stop storing; later local edits raise `ClientClosed`."""
        self.closed = True
        self.store.close()

    @property
    def pending_since(self) -> float | None:
        """Since when (time.monotonic) some remote update has waited for a dependency."""
        return self.live.pending_since

    def state_vector(self) -> bytes:
        return self.live.state_vector()

    def diff(self, state_vector: bytes) -> bytes:
        """What the server lacks, updates still waiting for a dependency included."""
        try:
            return self.live.diff(state_vector)
        except UpdateRejected as exc:
            raise UpdateRejected(f"server sent a state vector that does not decode: {exc}") from exc

    def apply_remote(self, update: bytes) -> None:
        """Apply and store a server update; it is never sent back. A document observer
        that fails is logged (its bug); the update and the connection stay."""
        if update == EMPTY_UPDATE:
            return
        self._applying_remote = True
        try:
            self.live.apply(update)
        except UpdateRejected as exc:
            raise UpdateRejected(f"server sent an update that does not apply: {exc}") from exc
        finally:
            self._applying_remote = False
        self.store.append(update)

    def _on_change(self, event: TransactionEvent) -> None:
        if self._applying_remote:
            return
        update = bytes(event.update)
        if update == EMPTY_UPDATE:
            return
        if self.closed:
            raise ClientClosed("edit after close() is not stored or sent")
        mark = self.store.append(update)  # stored before it can be sent
        self.pending_mark = mark
        self._on_local_edit(update, mark)
