"""The local document and its store, as the sync session sees it.

Every change is written to the local store before anything else happens to it: a local
edit before it can be sent, a remote update right after it is applied. The document is
rebuilt from the store on start, so edits made with no server survive a restart.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from pycrdt import Doc, TransactionEvent

from engine.client.errors import ClientClosed
from engine.client.local_store import LocalStore
from engine.errors import StorageError, UpdateRejected
from engine.yjs import EMPTY_UPDATE

log = logging.getLogger(__name__)

LocalEdit = Callable[[bytes, int], None]


class Replica:
    """A pycrdt Doc backed by a `LocalStore`; implements `engine.session.Replica`.

    Args:
        store: where the replica lives; loaded now.
        on_local_edit: called with (update, mark) after each local edit is stored.

    Attributes:
        doc: the pycrdt Doc.
        pending_mark: the mark of the newest edit not yet known to be on the server (0: none).
    """

    def __init__(self, store: LocalStore, on_local_edit: LocalEdit) -> None:
        self.store = store
        self.doc: Doc[Any] = Doc()
        state = store.load()
        if state is not None:
            try:
                self.doc.apply_update(state)
            except BaseException as exc:
                if not _is_bad_update(exc):
                    raise
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

    def state_vector(self) -> bytes:
        return bytes(self.doc.get_state())

    def diff(self, state_vector: bytes) -> bytes:
        try:
            return bytes(self.doc.get_update(state_vector))
        except ValueError as exc:
            raise UpdateRejected(f"server sent a state vector that does not decode: {exc}") from exc

    def apply_remote(self, update: bytes) -> None:
        """Apply and store a server update; it is never sent back."""
        if update == EMPTY_UPDATE:
            return
        self._applying_remote = True
        try:
            self.doc.apply_update(update)
        except ExceptionGroup as group:
            # Applied; only some observer failed. That is the observer's bug: keep the
            # update and the connection.
            log.error("room %r: a document observer failed", self.store.key.room, exc_info=group)
        except BaseException as exc:
            if not _is_bad_update(exc):
                raise
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


def _is_bad_update(exc: BaseException) -> bool:
    """pyo3 panics are BaseExceptions; they still mean "bad update", not "exit"."""
    return isinstance(exc, Exception) or type(exc).__name__ == "PanicException"
