"""RoomActor: one owner per room that serializes all work on its document.

The actor drains its inbox in batches: it applies every update of the batch, commits them
in one group commit, and only then lets anything out (broadcasts, SyncStep2 answers,
"saved" acks, REST replies). That is the output rule: no client can see an edit that a
crash could still lose. While one batch is being committed, the next one gathers.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from enum import Enum
from functools import partial

from pycrdt import merge_updates

from engine.document import RoomDocument
from engine.errors import (
    ClientIdTaken,
    Close,
    ProtocolError,
    QuotaExceeded,
    StorageError,
    Unavailable,
    UpdateRejected,
)
from engine.protocol import (
    Message,
    PermissionDeniedMessage,
    Saved,
    SyncStep1,
    SyncStep2,
    Update,
    encode,
    encode_update,
)
from engine.rules.authors import attribute, by_owner, owner_count, removed_before
from engine.rules.authorship import AuthoredRange, Authorship, record_authored
from engine.rules.edits import Authored, Check, EditChange, EditRecorder
from engine.rules.enforce import RoomRules, Writer
from engine.rules.refusals import count_refusals
from engine.storage import Append
from engine.update_scan import UpdateShape, scan_update
from engine.yjs import EMPTY_UPDATE, decode_state_vector
from server.config import Config
from server.metrics import Metrics
from server.rooms.answers import Answers
from server.rooms.batch import Batch, DirectUpdate, Work
from server.rooms.fanout import Fanout
from server.rooms.guard import ClientGuard
from server.rooms.peer import Peer
from server.rooms.presence import PresenceRelay
from server.rooms.store import RoomStore

log = logging.getLogger(__name__)

READ_ONLY_REASON = "read-only token: updates and awareness are not accepted"


class RoomState(Enum):
    RUNNING = "running"
    CLOSED = "closed"


class RoomActor:
    """Owns one RoomDocument; see the module docstring for the output rule."""

    def __init__(
        self,
        name: str,
        doc: RoomDocument,
        last_seq: int,
        *,
        store: RoomStore,
        fanout: Fanout,
        config: Config,
        metrics: Metrics,
        on_close: Callable[[RoomActor], None],
        first_sync: list[bytes] | None = None,
        check: Check | None = None,
    ) -> None:
        """`first_sync`: the stored pieces the document was just built from (snapshot,
        then log tail); a client with nothing gets them as they are, no encoding."""
        self.name = name
        self.doc = doc
        self.last_seq = last_seq
        self.store = store
        self.fanout = fanout
        self.config = config
        self.metrics = metrics
        self.state = RoomState.RUNNING
        self.peers: dict[int, Peer] = {}
        self.presence = PresenceRelay(
            publish=lambda payload: fanout.publish_awareness(name, payload),
            room=name,
            peers=self.peers,
            flush_seconds=config.awareness_flush_seconds,
            max_ids_per_peer=config.limits.max_client_ids_per_connection,
            claim=lambda peer, client_id: self.guard.claim(peer.user, client_id),
        )
        self._inbox: deque[Work] = deque()
        self._wakeup = asyncio.Event()
        self._space = asyncio.Event()
        self._space.set()
        self._settled = asyncio.Event()
        self._settled.set()
        self._busy = False
        self._refused: str | None = None  # why the last applied update was partly undone
        self._holds = 0  # in-process users (server-side edits) keeping the room loaded
        self._idle_handle: asyncio.TimerHandle | None = None
        self.answers = Answers(doc, first_sync)  # shared by joiners of one moment
        self.guard = ClientGuard(name, store)  # rules: client ids belong to users
        part_rules = config.rules.for_room(name)
        self.authorship = Authorship(self.guard.owners.known)  # who wrote which item
        self.rules = RoomRules(doc.doc, part_rules, self.authorship) if part_rules else None
        if self.rules is not None:
            self.guard.owners.reserve(doc.doc.client_id)
        self._by_id = self.rules is not None and any(part.by_id for part in self.rules.parts)
        self._removed_by: tuple[str, ...] = ()  # whose items the last checked apply removed
        self.checker = (
            EditRecorder(doc.doc, name, check, config.check_budget_seconds) if check else None
        )
        if self.checker is not None:
            self.guard.owners.reserve(doc.doc.client_id)  # its undos are the server's
            self.guard.learn_deleted = True  # edits name the authors of what they delete
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"room:{name}")
        self._schedule_idle()  # a room loaded for a client that never joins still unloads
        self._on_close = on_close

    # ------------------------------------------------------------------ peers

    def join(self, peer: Peer) -> None:
        """Start syncing a peer: our state vector, then everyone's presence."""
        self._require_running()
        self._cancel_idle()
        self.peers[peer.peer_id] = peer
        peer.send(encode(SyncStep1(self.doc.state_vector())))
        states = self.presence.states_frame()
        if states is not None:
            peer.send(states)

    def hold(self) -> None:
        """Keep the room loaded while in-process code uses it (see `release`)."""
        self._require_running()
        self._holds += 1
        self._cancel_idle()

    def release(self) -> None:
        self._holds -= 1
        if not self.peers and not self._holds:
            self._schedule_idle()

    def leave(self, peer: Peer) -> None:
        if self.peers.pop(peer.peer_id, None) is None:
            return
        self.presence.remove_peer(peer)
        if not self.peers:
            self._schedule_idle()

    def submit(self, peer: Peer, message: Message) -> None:
        """Queue a sync message from a peer (processed in arrival order)."""
        self._inbox.append((peer, message))
        self._wake()

    def has_space(self) -> bool:
        """Whether a reader may submit without waiting (see `wait_for_space`)."""
        return len(self._inbox) < self.config.limits.max_inbox

    async def wait_for_space(self) -> None:
        """Readers call this when the inbox is long, so a flood backs up into TCP."""
        while len(self._inbox) >= self.config.limits.max_inbox and self.state is RoomState.RUNNING:
            self._space.clear()
            await self._space.wait()

    async def post_update(
        self,
        update: bytes,
        user: str | None,
        *,
        restore_of: int | None = None,
        server: bool = False,
        shape: UpdateShape | None = None,
    ) -> int:
        """Apply an update made outside the sync protocol (REST, server-side edits,
        restores); returns its seq once durable and broadcast. `server`: made by the
        server itself, with its authority (see `DirectUpdate`). `shape`: the update's
        `scan_update`, for a server update walked off the event loop (taken only with
        `server`: a writer's update is always walked here)."""
        seq, _ = await self.post_update_judged(
            update, user, restore_of=restore_of, server=server, shape=shape
        )
        return seq

    async def post_update_judged(
        self,
        update: bytes,
        user: str | None,
        *,
        restore_of: int | None = None,
        server: bool = False,
        shape: UpdateShape | None = None,
    ) -> tuple[int, str | None]:
        """`post_update`, also returning the reason when a rule or `Hooks.check` undid
        part of the update (it was committed, with its undo, all the same)."""
        self._require_running()
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        request = DirectUpdate(update, user, future, restore_of, server, shape=shape)
        self._inbox.append(request)
        self._wake()
        seq = await future
        return seq, request.rejected

    def remote_updates(self, updates: list[bytes], last_seq: int) -> None:
        """Updates another server process committed: already durable, so they are
        applied and relayed to this process's clients at once."""
        if self.state is not RoomState.RUNNING:
            return
        for update in updates:
            try:
                self.doc.apply(update, "storage")
            except UpdateRejected:
                log.exception(
                    "room %r: a committed update from another node does not apply", self.name
                )
        self.last_seq = max(self.last_seq, last_seq)
        self.store.commits.notify(self.name, last_seq)
        self._broadcast([(None, update) for update in updates])

    def remote_awareness(self, payload: bytes) -> None:
        if self.state is RoomState.RUNNING:
            self.presence.apply_remote(payload)

    def _wake(self) -> None:
        self._settled.clear()
        if not self._wakeup.is_set():
            self._wakeup.set()

    def _require_running(self) -> None:
        if self.state is not RoomState.RUNNING:
            raise Unavailable(f"room {self.name!r} is {self.state.value}")

    # ------------------------------------------------------------------ the loop

    async def _run(self) -> None:
        """Drain the inbox in batches; each batch waits for its commit before the next is
        applied, so updates that arrive meanwhile form the next, larger batch (one merge
        and one frame per recipient). Measured: pipelining batches instead cut fan-out
        throughput by a quarter and raised CPU per update by a third at 50 clients."""
        while self.state is RoomState.RUNNING:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._inbox and self.state is RoomState.RUNNING:
                work = list(self._inbox)
                self._inbox.clear()
                self._space.set()
                self._busy = True
                try:
                    await self._process(work)
                finally:
                    self._busy = False
            self._settled.set()
            if not self.peers:
                self._schedule_idle()

    async def _process(self, work: list[Work]) -> None:
        try:
            await self.guard.prepare(_client_writes(work), self.doc.clocks)
            if self._by_id:
                await self.guard.know_authors(
                    self.doc.clocks, self.authorship, self.doc.doc.client_id
                )
        except StorageError as exc:  # bindings unknown: nothing of the batch may apply
            self.fail(f"storage failed: {exc}")
            for item in work:
                if isinstance(item, DirectUpdate) and not item.future.done():
                    item.future.set_exception(exc)
            return
        for item in work:
            if isinstance(item, DirectUpdate) and item.server and item.shape is not None:
                self.guard.remember(item.update, item.shape)
        batch = Batch()
        for item in work:
            if isinstance(item, DirectUpdate):
                self._apply_http(item, batch)
            else:
                self._apply_message(item[0], item[1], batch)
        if batch.appends:
            try:
                seqs = await self.store.commit(batch.appends)
            except StorageError as exc:
                self.fail(f"storage failed: {exc}")
                for request, _ in batch.http:
                    if not request.future.done():
                        request.future.set_exception(exc)
                return
            self.last_seq = seqs[-1]
            try:
                self._maybe_snapshot()
                await self.guard.save()  # a new room's first bindings, durable before the acks
                await self._record_authored(batch)
                await self._count_refusals(batch)  # the records are in the entries themselves
            finally:
                for request, index in batch.http:
                    request.future.set_result(seqs[index])
        self._release(batch)

    def _maybe_snapshot(self) -> None:
        """Snapshot when the policy says so. Alone on a room, the live document holds
        exactly 1..last_seq now, so its encoding is the snapshot (a big room's is built
        in the worker); shared with other processes it may not: the store rebuilds one."""
        if not self.store.snapshot_due(self.name):
            return
        if self.fanout.shared:
            self.store.rebuild_snapshot(self.name)
        else:
            self.store.snapshot(self.name, self.last_seq, self.doc.encode_snapshot)

    def _apply_message(self, peer: Peer, message: Message, batch: Batch) -> None:
        if peer.closed and not isinstance(message, (SyncStep2, Update)):
            return
        match message:
            case SyncStep1(state_vector):
                self._answer_step1(peer, state_vector, batch)
            case SyncStep2(update) | Update(update):
                if not peer.can_write:
                    if update != EMPTY_UPDATE:
                        peer.send(encode(PermissionDeniedMessage(READ_ONLY_REASON)))
                    return
                peer.received_updates += 1
                if self._apply(peer, update, peer.user, batch) is not None:
                    batch.acks[peer.peer_id] = (peer, peer.received_updates)

    def _answer_step1(self, peer: Peer, state_vector: bytes, batch: Batch) -> None:
        # The cap counts clients the room does not know: a room may legitimately hold
        # more authors than the cap, and its own clients must always be able to sync.
        cap = self.doc.client_count + self.config.limits.max_state_vector_entries
        try:
            decode_state_vector(state_vector, max_entries=cap)
            frames = self.answers.answer(state_vector)
        except (ProtocolError, UpdateRejected) as exc:
            peer.close(Close.MALFORMED, f"state vector: {exc}")
            return
        batch.replies.extend((peer, frame) for frame in frames)

    def _apply_http(self, request: DirectUpdate, batch: Batch) -> None:
        self._refused = None
        try:
            index = self._apply(
                None, request.update, request.user, batch, request.restore_of, request.server
            )
        except (UpdateRejected, ProtocolError, ClientIdTaken) as exc:
            request.future.set_exception(exc)
            return
        request.rejected = self._refused
        if index is None or index < 0:
            request.future.set_result(self.last_seq)
        else:
            batch.http.append((request, index))

    def _apply(
        self,
        peer: Peer | None,
        update: bytes,
        user: str | None,
        batch: Batch,
        restore_of: int | None = None,
        server: bool = False,
    ) -> int | None:
        """Apply one update; returns its index in the commit batch (None: rejected).

        An empty update is applied (as a no-op) and index -1 means "nothing to store".
        """
        try:
            if not server:
                clocks = self.doc.clocks  # a view, read once for the checks before the apply
                self.guard.check(user, update, clocks)
                if self.rules is not None or self.checker is not None:
                    self.guard.require_whole(update, clocks)  # judged whole, by its sender
                if self.rules is not None:
                    self.rules.check_types(update, clocks, self.guard.shape_of(update))
        except ClientIdTaken as exc:
            self.metrics.rejected.labels("client_id").inc()
            if peer is None:
                raise
            peer.close(Close.FORBIDDEN, str(exc))
            return None
        except UpdateRejected as exc:
            self.metrics.rejected.labels(
                "rule" if str(exc).startswith("rule:") else "malformed"
            ).inc()
            if peer is None:
                raise
            peer.close(Close.MALFORMED, str(exc))
            return None
        authored = self._server_edit_authors(update, user) if server and self._by_id else []
        try:
            clients, refused, label = self._judged_apply(peer, user, update, server)
        except QuotaExceeded as exc:
            self.metrics.rejected.labels("quota").inc()
            if peer is None:
                raise
            peer.close(Close.TOO_LARGE, str(exc))
            return None
        except UpdateRejected as exc:
            self.metrics.rejected.labels("malformed").inc()
            if peer is None:
                raise
            peer.close(Close.MALFORMED, str(exc))
            return None
        if update == EMPTY_UPDATE:
            return -1
        if authored:
            for client, *_ in authored:
                self.guard.owners.reserve(client)  # the server's: no writer may claim it
            self.authorship.add(authored)
            batch.authored += authored
        sender = peer
        if refused is not None:
            self.metrics.rejected.labels(label).inc()
            update, clients = self._with_undo(peer, user, update, clients, refused, batch)
            sender = None  # the sender gets the undo too
            self._refused = refused[1]
            rejected = {"user": user, "by": label, "reason": refused[1]}
            batch.refusals += 1
            append = Append(self.name, update, user, clients, restore_of, rejected)
        else:
            append = Append(self.name, update, user, clients, restore_of)
        batch.appends.append(append)
        batch.updates.append((sender, update))
        return len(batch.appends) - 1

    def _server_edit_authors(self, update: bytes, user: str | None) -> list[AuthoredRange]:
        """A server-side edit (`rooms.edit`, a restore) is its named user's: the ranges of
        clocks it adds (under the client ids the server edits with), before it is applied."""
        if user is None:
            return []
        try:
            shape = self.guard.shape_of(update) or scan_update(update)
        except ProtocolError:
            return []
        clocks = self.doc.clocks
        return [
            (client, max(start, clocks.get(client, 0)), end, user)
            for client, (start, end) in shape.ranges.items()
            if end > clocks.get(client, 0)
        ]

    async def _record_authored(self, batch: Batch) -> None:
        """Store who the server's writes of this batch are attributed to (a record lost
        in a crash leaves those items to moderators: fewer rights, never more)."""
        if not batch.authored:
            return
        write = partial(record_authored, self.store.docs, self.name, batch.authored)
        try:
            await self.store.write(write)
        except StorageError:
            log.warning("room %r: could not record authors of %s", self.name, batch.authored)

    async def _count_refusals(self, batch: Batch) -> None:
        """Count this batch's refusals for the rooms listing (the history's records of
        them were committed with their entries)."""
        if not batch.refusals:
            return
        try:
            await self.store.write(
                partial(count_refusals, self.store.docs, self.name, batch.refusals)
            )
        except StorageError:
            log.warning("room %r: could not count %d refusals", self.name, batch.refusals)

    def _judged_apply(
        self, peer: Peer | None, user: str | None, update: bytes, server: bool
    ) -> tuple[tuple[int, ...], tuple[bytes, str] | None, str]:
        """Apply a writer's update under the rules and `Hooks.check`: the authors, what
        must be undone (None: nothing) and the metric label of the refusal. A refusal by
        the hook undoes the whole update, so the rules' own undo is then dropped."""
        judge = self.rules if not server else None
        checker = self.checker if not server else None
        if judge is not None:
            roles = frozenset((peer.role,)) if peer is not None and peer.role else frozenset()
            writer = Writer(user, roles, named=not self.config.rules.anonymous_writers)
            judge.start(writer, update, self.doc.clocks)
        authored = None
        if checker is not None:
            authored = self._authorship(update)
            checker.start(update)
        try:
            clients = self.doc.apply(update, "client", self.guard.shape_of(update))
        finally:
            refusals = judge.stop() if judge is not None else []
            checked = checker.finish(user, authored) if checker is not None else None
        if checked is not None:
            undo, reason, failed = checked
            self._attribute_check_undo(undo)
            return clients, (undo, reason), "check_failed" if failed else "check"
        return clients, judge.undo(refusals) if judge is not None else None, "rule"

    def _attribute_check_undo(self, undo: bytes) -> None:
        """What a `Hooks.check` refusal re-inserts (under the server's id) stays its
        author's when everything the update removed had one author; otherwise it has no
        known author (moderators only, engine/rules/authorship.py)."""
        if self.rules is None or not self._by_id or len(self._removed_by) != 1:
            return
        server = self.doc.doc.client_id
        found = scan_update(undo).ranges.get(server)
        if found is not None:
            self.rules.authored = [(server, found[0], found[1], self._removed_by[0])]
            self.authorship.add(self.rules.authored)

    def _authorship(self, update: bytes) -> Authored:
        """How `Hooks.check` learns who wrote what this update removes: from what the
        apply's transactions deleted (engine/rules/authors.py). The state from before the
        apply is kept only when the update's delete set names several owners."""
        owners = self.authorship
        clocks = dict(self.doc.clocks)
        several = owner_count(update, owners, clocks) > 1
        before = bytes(self.doc.doc.get_update()) if several else None

        def authored(changes: list[EditChange], applied: list[bytes]) -> tuple[EditChange, ...]:
            removed = by_owner(removed_before(applied, clocks), owners)
            self._removed_by = tuple(removed)
            return attribute(changes, removed, before, update)

        return authored

    def _with_undo(
        self,
        peer: Peer | None,
        user: str | None,
        update: bytes,
        clients: tuple[int, ...],
        refused: tuple[bytes, str],
        batch: Batch,
    ) -> tuple[bytes, tuple[int, ...]]:
        """A refused edit: the live document already holds its undo; commit and relay
        both as one update (no replica and no seq shows the forbidden state), and tell
        the sender why once it is durable."""
        undo, reason = refused
        self.doc.apply(undo, "storage")  # already applied: this only counts it (no quota)
        if self.rules is not None:
            batch.authored += self.rules.authored
            self.rules.authored = []
        log.info("room %r: undid part of an edit by %r: %s", self.name, user, reason)
        if peer is not None:
            batch.replies.append((peer, encode(PermissionDeniedMessage(reason))))
        merged = bytes(merge_updates(update, undo))
        return merged, (*clients, self.doc.doc.client_id)

    def _release(self, batch: Batch) -> None:
        """The batch is durable: broadcast, answer, acknowledge."""
        self._broadcast(batch.updates)
        for peer, frame in batch.replies:
            peer.send(frame)
        for peer, count in batch.acks.values():
            if peer.wants_ack and not peer.closed:
                peer.send(encode(Saved(count, self.last_seq)))

    def _broadcast(self, updates: list[tuple[Peer | None, bytes]]) -> None:
        """One frame per recipient per batch. The batch's updates are merged once; when
        they all come from one sender (a lone edit, or one client typing fast) that
        sender is skipped, otherwise everyone gets the merge (applying one's own update
        again is a no-op, and one shared frame beats a merge per recipient)."""
        if not updates:
            return
        senders = {id(sender) for sender, _ in updates}
        only_sender = updates[0][0] if len(senders) == 1 else None
        if len(updates) == 1:
            frame = encode_update(updates[0][1])
        else:
            frame = encode_update(merge_updates(*(update for _, update in updates)))
        for peer in self.peers.values():
            if peer is not only_sender:
                peer.send(frame)

    # ------------------------------------------------------------------ lifecycle

    @property
    def idle(self) -> bool:
        return not self.peers and not self._inbox and not self._busy and not self._holds

    def _schedule_idle(self) -> None:
        if self._idle_handle is None and self.state is RoomState.RUNNING:
            loop = asyncio.get_running_loop()
            self._idle_handle = loop.call_later(self.config.idle_unload_seconds, self._idle_check)

    def _cancel_idle(self) -> None:
        if self._idle_handle is not None:
            self._idle_handle.cancel()
            self._idle_handle = None

    def _idle_check(self) -> None:
        self._idle_handle = None
        if self.idle:
            log.info("room %r: idle, unloading", self.name)
            self.close()

    def fail(self, detail: str) -> None:
        """Storage failed: the in-memory doc may hold updates that are not durable, so it
        must not serve anyone. Close every client (they keep their edits and resend on
        reconnect) and let the next join load the room from disk again."""
        log.error("room %r: %s; closing its clients so they resend", self.name, detail)
        for peer in list(self.peers.values()):
            peer.close(Close.UNAVAILABLE, "storage failed, reconnect")
        self.close()

    def close(self) -> None:
        if self.state is RoomState.CLOSED:
            return
        self.state = RoomState.CLOSED
        self._on_close(self)
        self._cancel_idle()
        self.answers.forget()
        self.presence.close()
        self._wakeup.set()
        self._space.set()
        self._settled.set()
        while self._inbox:
            item = self._inbox.popleft()
            if isinstance(item, DirectUpdate) and not item.future.done():
                item.future.set_exception(Unavailable(f"room {self.name!r} closed"))

    async def drain(self) -> None:
        """Let queued work finish (used at shutdown, before closing clients)."""
        if self.state is RoomState.RUNNING:
            await self._settled.wait()


def _client_writes(work: list[Work]) -> list[tuple[str | None, bytes]]:
    """The updates of a batch that writers sent (what the rules judge), in order."""
    writes: list[tuple[str | None, bytes]] = []
    for item in work:
        if isinstance(item, DirectUpdate):
            if not item.server:
                writes.append((item.user, item.update))
        elif isinstance(item[1], (SyncStep2, Update)) and item[0].can_write:
            writes.append((item[0].user, item[1].update))
    return writes
