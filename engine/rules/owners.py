"""Client ids belong to users: a Yjs client id is bound to the user who first sent
structs of it, and structs of a bound id from anyone else are refused.

Deletions are not structs, so they say nothing about ownership (deleting another user's
item is what rules decide). Only structs new to the room are judged: a reconnecting
client's sync step 2 may carry structs of other users' ids that the room already holds,
and replaying those changes nothing.

Bindings are per-room metadata in the LogStore (`client:<id>` -> user name), written with
compare-and-set (`only_new`), so with several server processes on one Redis the first
binding wins everywhere. An anonymous writer (no user) is bound as the empty name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from engine.errors import ClientIdTaken
from engine.storage import DocStore
from engine.update_scan import UpdateShape

META_PREFIX = "client:"
ANONYMOUS = ""
SERVER = "\x00server"  # the live document's own id, which undoes refused edits


def owner_name(user: str | None) -> str:
    """The name a client id is bound to for `user` (anonymous writers share one)."""
    return user if user is not None else ANONYMOUS


def new_authors(shape: UpdateShape, clocks: Mapping[int, int]) -> list[int]:
    """The client ids with structs in the update that a document at `clocks` lacks."""
    return [client for client, (_start, end) in shape.ranges.items() if end > clocks.get(client, 0)]


class ClientOwners:
    """One room's bindings as far as this process has seen them (a cache of the store:
    a binding never changes, so a cached one is always right; a missing one is asked of
    the store before it is trusted)."""

    def __init__(self) -> None:
        self.known: dict[int, str] = {}
        self.unsaved: dict[int, str] = {}  # bound before the room existed in the store

    def missing(self, clients: Iterable[int]) -> list[int]:
        return [client for client in clients if client not in self.known]

    def reserve(self, client_id: int) -> None:
        """The server's own client id: no writer may send structs under it, now or after
        the room is unloaded (the binding is stored with the next commit)."""
        self.known[client_id] = SERVER
        self.unsaved[client_id] = SERVER

    def learn(self, owners: Mapping[int, str]) -> None:
        self.known.update(owners)

    def check(self, user: str | None, clients: Iterable[int]) -> None:
        """Bind the still unbound `clients` to `user` (in memory, see `take_unsaved`).

        Raises:
            ClientIdTaken: one of them is bound to another user; nothing is bound then.
        """
        name = owner_name(user)
        fresh = []
        for client in clients:
            owner = self.known.get(client)
            if owner is None:
                fresh.append(client)
            elif owner != name:
                raise ClientIdTaken(f"client id {client} belongs to another user")
        for client in fresh:
            self.known[client] = name
            self.unsaved[client] = name

    def saved(self, owners: Mapping[int, str]) -> None:
        for client in owners:
            self.unsaved.pop(client, None)

    def take_unsaved(self) -> dict[int, str]:
        unsaved, self.unsaved = self.unsaved, {}
        return unsaved


def bind_clients(docs: DocStore, room: str, wanted: Mapping[int, str]) -> dict[int, str] | None:
    """Bind each client id to its wanted user unless already bound; returns every id's
    owner as stored (the earlier binding where there was one). None when the room is
    not stored yet (the caller binds after the room's first commit). Runs on the
    store's writer thread."""
    if docs.info(room) is None:
        return None
    owners: dict[int, str] = {}
    for client, user in wanted.items():
        name = META_PREFIX + str(client)
        if docs.set_meta(room, name, user.encode("utf-8"), only_new=True):
            owners[client] = user
        else:
            stored = docs.get_meta(room, name)
            owners[client] = stored.decode("utf-8") if stored is not None else user
    return owners


def stored_owners(docs: DocStore, room: str) -> dict[int, str]:
    """Every binding of a room (for tools and tests)."""
    return {
        int(name[len(META_PREFIX) :]): value.decode("utf-8")
        for name, value in docs.scan_meta(room, META_PREFIX)
    }


def owners_of(docs: DocStore, room: str, clients: Iterable[int]) -> dict[int, str]:
    """The stored owners of some client ids (those bound; the others are left out)."""
    owners: dict[int, str] = {}
    for client in clients:
        stored = docs.get_meta(room, META_PREFIX + str(client))
        if stored is not None:
            owners[client] = stored.decode("utf-8")
    return owners
