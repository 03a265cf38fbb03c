"""LiveDoc: a pycrdt Doc that integrates remote updates whatever order they arrive in.

Yrs keeps an update whose dependencies have not arrived as *pending* and retries it when
later updates come in, but not reliably: an update can stay pending after what it waited
for arrived (three updates of one client applied in the order 2, 3, 1; a merged update
that overlaps what the document already holds), and sometimes a re-apply that shows no
progress is needed before a second one integrates. pycrdt does not expose what is
pending either. So every holder of a live document (the server's room, the SDK replica,
server-side edits, rebuilds and JSON views) applies remote updates through this class,
which keeps its own list of what is still waiting and settles it.

The API (others build on it; keep it small and stable)::

    live = LiveDoc()                      # or LiveDoc(existing_doc)
    shape = live.apply(update)            # -> UpdateShape (authors, clock ranges, needs);
                                          #    UpdateRejected if it does not decode/apply
    live.apply_whole(snapshot)            # a snapshot known to integrate whole: no scan
    live.doc                              # the pycrdt Doc (observe it; local edits go
                                          #    straight to it, they never wait)
    live.pending                          # raw updates not (fully) integrated yet
    live.pending_since                    # time.monotonic() when that began, or None
    live.clocks                           # client -> clock, what is integrated
    live.state_vector()                   # the Doc's state vector (integrated only)
    live.diff(state_vector)               # what a peer lacks, pending updates included
    live.encode_state()                   # the integrated state only
    live.encode_snapshot()                # everything, pending updates included

Settling rule: after any apply that leaves something pending, each pending update that
is worth trying is re-applied, and this repeats until none is. Worth trying: its needs
(`UpdateShape.needs`: clocks before its first struct and inside its holes, and what it
refers to or deletes) are all integrated, or the next clock some client lacks is in it
(`UpdateShape.continues`), and it has not yet been re-applied `MAX_TRIES` times at the
current clocks of the clients it involves. The decision comes from what is pending, not
from whether one round made progress (yrs may need a round that integrates nothing);
the tries only keep input yrs never integrates from spinning: it stays pending, is kept
in every diff and snapshot, and is tried again when one of its clients moves.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from pycrdt import Doc, merge_updates

from engine.errors import ProtocolError, UpdateRejected
from engine.update_scan import UpdateShape, scan_update
from engine.yjs import EMPTY_UPDATE, decode_state_vector

log = logging.getLogger(__name__)

# How often one pending update is re-applied at the same clocks (of the clients it
# involves) before it is left to wait for the next change. Yrs has been seen to need a
# re-apply that integrates nothing before the next one integrates; more only guards
# against input it never integrates.
MAX_TRIES = 3


@dataclass(slots=True)
class _Waiting:
    """A pending update, and how often it was re-applied at the clocks it cares about."""

    update: bytes
    shape: UpdateShape
    tried_at: dict[int, int] | None = None
    tries: int = 0

    def worth_trying(self, clocks: Mapping[int, int]) -> bool:
        """Ready (all it needs is integrated) or able to continue some client's run, and
        not yet re-applied `MAX_TRIES` times at the current clocks it depends on."""
        if not (self.shape.integrates_after(clocks) or self.shape.continues(clocks)):
            return False
        return self.tried_at != self._relevant(clocks) or self.tries < MAX_TRIES

    def note_try(self, clocks: Mapping[int, int]) -> None:
        relevant = self._relevant(clocks)
        if relevant == self.tried_at:
            self.tries += 1
        else:
            self.tried_at, self.tries = relevant, 1

    def _relevant(self, clocks: Mapping[int, int]) -> dict[int, int]:
        clients = {*self.shape.ranges, *self.shape.needs()}
        return {client: clocks.get(client, 0) for client in clients}


class LiveDoc:
    """A pycrdt Doc plus the updates still waiting to integrate into it (see module).

    Args:
        doc: the Doc to own (default: a new one); whatever it holds counts as integrated.
        clock: the time source of `pending_since` (monotonic seconds).
    """

    def __init__(
        self, doc: Doc[Any] | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.doc: Doc[Any] = Doc() if doc is None else doc
        self._clock = clock
        self._clocks: dict[int, int] = decode_state_vector(self.state_vector())
        self._pending: list[_Waiting] = []
        self._pending_since: float | None = None

    # ------------------------------------------------------------------ reading

    @property
    def pending(self) -> tuple[bytes, ...]:
        """The updates not yet wholly integrated, in arrival order."""
        return tuple(waiting.update for waiting in self._pending)

    @property
    def pending_since(self) -> float | None:
        """When the document last went from nothing pending to something pending."""
        return self._pending_since

    @property
    def clocks(self) -> Mapping[int, int]:
        """Per client, the clock up to which its structs are integrated (a read-only view,
        valid until the next apply: copy it to keep it)."""
        return MappingProxyType(self._clocks)

    def state_vector(self) -> bytes:
        return bytes(self.doc.get_state())

    def diff(self, state_vector: bytes) -> bytes:
        """Everything a peer at `state_vector` lacks, pending updates included (the
        peer may hold what they wait for, or get it later from someone else).

        Raises:
            UpdateRejected: the state vector does not decode.
        """
        try:
            integrated = bytes(self.doc.get_update(state_vector))
        except ValueError as exc:
            raise UpdateRejected(f"state vector does not decode: {exc}") from exc
        return self._with_pending(integrated)

    def encode_state(self) -> bytes:
        """The integrated state as one update (what is pending left out)."""
        return bytes(self.doc.get_update())

    def encode_snapshot(self) -> bytes:
        """Everything as one update: the Doc's encoding (which squashes runs of typing
        into single items) merged with the pending updates (which it leaves out)."""
        return self._with_pending(self.encode_state())

    def _with_pending(self, update: bytes) -> bytes:
        if not self._pending:
            return update
        return bytes(merge_updates(update, *self.pending))

    # ------------------------------------------------------------------ applying

    def apply(self, update: bytes, shape: UpdateShape | None = None) -> UpdateShape:
        """Apply one Yjs update (v1) and settle whatever it lets integrate.

        Args:
            shape: the update's `scan_update`, when the caller has it already.

        Raises:
            UpdateRejected: the update does not decode or does not apply; nothing applied.
        """
        if shape is None:
            try:
                shape = scan_update(update)
            except ProtocolError as exc:
                raise UpdateRejected(f"update does not decode: {exc.reason}") from exc
        if update == EMPTY_UPDATE:
            return shape
        self._apply_raw(update)
        if not self._pending and shape.integrates_after(self._clocks):
            for client, (_start, end) in shape.ranges.items():
                if end > self._clocks.get(client, 0):
                    self._clocks[client] = end
            return shape
        self._pending.append(_Waiting(update, shape))
        self.settle()
        return shape

    def apply_whole(self, update: bytes) -> None:
        """Apply an update known to integrate whole (a snapshot made from a document with
        nothing pending), without scanning it; the clocks are then read from the Doc.

        Raises:
            UpdateRejected: the update does not apply.
        """
        self._apply_raw(update)
        self._clocks = decode_state_vector(self.state_vector())
        if self._pending:
            self.settle()

    def settle(self) -> None:
        """Re-apply pending updates while any of them is worth trying (see module)."""
        while True:
            self._refresh()
            candidates = [w for w in self._pending if w.worth_trying(self._clocks)]
            if not candidates:
                return
            for waiting in candidates:
                waiting.note_try(self._clocks)
                self._apply_raw(waiting.update)

    def _refresh(self) -> None:
        """Read the clocks from the Doc and drop what they cover from the pending list."""
        self._clocks = decode_state_vector(self.state_vector())
        self._pending = [w for w in self._pending if not w.shape.covered_by(self._clocks)]
        if not self._pending:
            self._pending_since = None
        elif self._pending_since is None:
            self._pending_since = self._clock()

    def _apply_raw(self, update: bytes) -> None:
        try:
            self.doc.apply_update(update)
        except ExceptionGroup as group:
            # Applied; only some observer of the Doc failed. That is the observer's bug:
            # the update stays, and so does whoever sent it.
            log.error("a document observer failed", exc_info=group)
        except BaseException as exc:
            # pyo3 panics surface as PanicException, a BaseException; they still mean
            # "this update is bad", not "stop the process".
            if not isinstance(exc, Exception) and type(exc).__name__ != "PanicException":
                raise
            raise UpdateRejected(f"update does not apply: {exc}") from exc
