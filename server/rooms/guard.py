"""The actor's guard on client ids: structs under a Yjs client id bound to another user
are refused before anything of the update is applied (see engine/rules/owners.py).

Binding needs the store (compare-and-set on per-room metadata), a write that waits for
the store (`RoomStore.write_unordered`), so it cannot happen in the middle of the actor's
synchronous apply loop.
Instead, before a batch is applied, `prepare` looks for client ids the batch's updates
introduce that this process has not seen bound yet and binds them in one store call; the
apply loop then checks each update against the bindings in memory. That store call happens
once per new client id (a client's first edit after it connects, or after the room
loads); every other update costs one bounded scan of its structure.

Server-side edits (`rooms.edit`, restores) act with the server's authority: not checked,
not bound.

Awareness reveals a client's id before it edits anything, so an id is also claimed by the
user whose connection first announces it in awareness (`claim`): otherwise whoever sees a
newcomer's presence could send structs under its id first and lock its owner out. Claims
are bound in the store at once, in the background; until then they count for this process.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from functools import partial

from engine.errors import ClientIdTaken, ProtocolError, StorageError, UpdateRejected
from engine.rules.authorship import Authorship, stored_authored
from engine.rules.owners import (
    SERVER,
    ClientOwners,
    bind_clients,
    new_authors,
    owner_name,
    owners_of,
    stored_owners,
)
from engine.update_scan import UpdateShape, scan_update
from server.rooms.store import RoomStore

log = logging.getLogger(__name__)

Pending = list[tuple[str | None, bytes]]  # (user, update) in batch order


class ClientGuard:
    """One room's client-id bindings, as its actor checks them."""

    def __init__(self, room: str, store: RoomStore) -> None:
        self.room = room
        self.store = store
        self.owners = ClientOwners()
        self._shapes: dict[int, tuple[bytes, UpdateShape]] = {}  # this batch's scans
        self._claims: dict[int, str] = {}  # awareness claims not yet bound in the store
        self._claiming: asyncio.Task[None] | None = None
        self.learn_deleted = False  # also look up the owners of deleted ids (Hooks.check)
        self._authors_loaded = False
        self._unbound: set[int] = set()  # ids the room holds items of that nobody owns
        self._clients_seen = 0  # how many client ids the room held at the last look
        self._servers: dict[int, int] = {}  # servers' ids -> their clock at the last read

    async def know_authors(
        self, clocks: Mapping[int, int], authorship: Authorship, own: int
    ) -> None:
        """For rules whose entries are their authors' by client id: have, in memory, the
        owner of every client id the room holds items of (the whole table once, then the
        ids that appear, e.g. from another server process) and the records of what the
        servers wrote (`own`: this process's id; another process's records are read
        again when its id has written more)."""
        docs = self.store.docs
        if not self._authors_loaded:
            self.owners.learn(await self.store.read(stored_owners, docs, self.room))
            authorship.add(await self.store.read(stored_authored, docs, self.room))
            self._servers = {
                c: clocks.get(c, 0) for c, o in self.owners.known.items() if o == SERVER
            }
            self._authors_loaded = True
        if len(clocks) != self._clients_seen:  # a room's client ids only ever grow
            seen = len(clocks)
            unknown = [c for c in clocks if c not in self.owners.known and c not in self._unbound]
            if unknown:
                found = await self.store.read(partial(owners_of, docs, self.room, unknown))
                self.owners.learn(found)
                self._unbound.update(client for client in unknown if client not in found)
                self._servers.update((c, 0) for c, owner in found.items() if owner == SERVER)
            self._clients_seen = seen
        for client, read_at in list(self._servers.items()):
            if client != own and clocks.get(client, 0) > read_at:
                found_ranges = await self.store.read(stored_authored, docs, self.room, client)
                authorship.ranges[client] = sorted(r[1:] for r in found_ranges)
                self._servers[client] = clocks.get(client, 0)

    async def prepare(self, updates: Pending, clocks: Mapping[int, int]) -> None:
        """Bind, in the store, the client ids these updates introduce and this process
        has not seen bound (first sender in batch order wins)."""
        self._shapes.clear()
        wanted: dict[int, str] = {}
        deleted: set[int] = set()
        for user, update in updates:
            shape = self._scan(update)
            if shape is None:
                continue
            for client in self.owners.missing(new_authors(shape, clocks)):
                wanted.setdefault(client, self._claims.get(client, owner_name(user)))
            if self.learn_deleted:  # what it deletes, and what it may overwrite (origins)
                deleted.update(self.owners.missing([*shape.deleted, *shape.deps]))
        if deleted - set(wanted):
            found = partial(owners_of, self.store.docs, self.room, deleted - set(wanted))
            self.owners.learn(await self.store.read(found))
        if not wanted:
            return
        owners = await self.store.write_unordered(
            partial(bind_clients, self.store.docs, self.room, wanted)
        )
        if owners is not None:  # None: the room is new; `check` binds, `save` persists
            self.owners.learn(owners)

    def check(self, user: str | None, update: bytes, clocks: Mapping[int, int]) -> None:
        """Raises ClientIdTaken when the update's new structs are under another user's
        client id. A malformed update passes: applying it reports what is wrong."""
        shape = self.shape_of(update) or self._scan(update)
        if shape is None:
            return
        authors = new_authors(shape, clocks)
        name = owner_name(user)
        for client in self.owners.missing(authors):
            if self._claims.get(client, name) != name:
                raise ClientIdTaken(f"client id {client} belongs to another user")
        self.owners.check(user, authors)

    def require_whole(self, update: bytes, clocks: Mapping[int, int]) -> None:
        """In a room with rules, an update must integrate at once: one that waits for a
        missing dependency would integrate later, inside another writer's apply, and be
        judged as that writer's (engine/rules/enforce.py).

        Raises:
            UpdateRejected: the update needs structs the room does not hold.
        """
        shape = self.shape_of(update) or self._scan(update)
        if shape is not None and not shape.integrates_after(clocks):
            raise UpdateRejected("update needs structs the room lacks (rules judge whole edits)")

    def claim(self, user: str | None, client_id: int) -> bool:
        """Awareness from `user` announces `client_id`: False if the id is another
        user's (the entry is then not relayed), else the id is claimed for `user`."""
        name = owner_name(user)
        owner = self.owners.known.get(client_id) or self._claims.get(client_id)
        if owner is not None:
            return owner == name
        self._claims[client_id] = name
        if self._claiming is None:
            self._claiming = asyncio.get_running_loop().create_task(self._bind_claims())
        return True

    async def _bind_claims(self) -> None:
        try:
            while self._claims:
                claims = dict(self._claims)
                write = partial(bind_clients, self.store.docs, self.room, claims)
                owners = await self.store.write_unordered(write)
                if owners is None:
                    return  # a room not stored yet: its first commit binds (`save`)
                self.owners.learn(owners)
                for client in claims:
                    self._claims.pop(client, None)
        except StorageError:
            log.warning("room %r: could not bind client ids announced in awareness", self.room)
        finally:
            self._claiming = None

    async def save(self) -> None:
        """Persist bindings made before the room existed in the store (after its first
        commit). Another process that bound one of them first wins; that is logged."""
        unsaved = self.owners.take_unsaved()
        unsaved.update(
            (client, user) for client, user in self._claims.items() if client not in unsaved
        )
        self._claims.clear()
        if not unsaved:
            return
        try:
            write = partial(bind_clients, self.store.docs, self.room, unsaved)
            owners = await self.store.write_unordered(write)
        except StorageError:
            log.warning("room %r: could not bind new client ids yet; retrying", self.room)
            self.owners.unsaved.update(unsaved)  # the next commit tries again
            return
        if owners is None:
            return
        for client, user in owners.items():
            if user != unsaved[client]:
                log.warning(
                    "room %r: client id %d was bound to another user by another process",
                    self.room,
                    client,
                )
        self.owners.learn(owners)

    def shape_of(self, update: bytes) -> UpdateShape | None:
        """The scan of an update of the current batch, if `prepare` or `check` made it:
        applying it then needs no second walk over its structs. Keyed by the very
        object (held here until the next batch), never by equal bytes."""
        entry = self._shapes.get(id(update))
        return entry[1] if entry is not None and entry[0] is update else None

    def remember(self, update: bytes, shape: UpdateShape) -> None:
        """The scan of a server-made update of this batch, walked elsewhere (a restore's,
        in the compute worker): applying it then needs no walk on the event loop, which
        for a restore of a big room is tens of milliseconds every room waits out."""
        self._shapes[id(update)] = (update, shape)

    def _scan(self, update: bytes) -> UpdateShape | None:
        try:
            shape = scan_update(update)
        except ProtocolError:
            return None
        self._shapes[id(update)] = (update, shape)
        return shape


__all__ = ["ClientGuard", "ClientIdTaken"]
