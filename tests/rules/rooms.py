"""A room's rules without a server: the server's document with `RoomRules`, and one pycrdt
replica per user, synced by hand. What a user sends is judged as the actor judges it (the
root types first, then the apply, then the undo of what is forbidden) and relayed to every
replica with its undo (the `type` rule reads the update's scan, as the actor's rules read
its guard's). Each replica's client id is bound to its user, as the server's
guard binds it, so rules by client id see who wrote what."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pycrdt import Array, Doc

from engine.errors import ProtocolError
from engine.rules.authorship import Authorship
from engine.rules.enforce import RoomRules, Writer
from engine.rules.model import PartRule
from engine.rules.owners import SERVER
from engine.update_scan import UpdateShape, scan_update
from engine.yjs import decode_state_vector

MODERATOR = "mod"  # the user whose token carries the role "admin"

Change = Callable[[Doc[Any]], object]


def _scanned(update: bytes) -> UpdateShape | None:
    """The scan the actor's guard makes of every update (the rules read it too)."""
    try:
        return scan_update(update)
    except ProtocolError:
        return None


class RulesRoom:
    """The server's document, its rules, its bindings and its users' replicas."""

    def __init__(
        self, rules: tuple[PartRule, ...], roots: Mapping[str, type] | None = None
    ) -> None:
        self.doc: Doc[Any] = Doc()
        self.bindings: dict[int, str] = {self.doc.client_id: SERVER}
        self.authorship = Authorship(self.bindings)
        self.rules = RoomRules(self.doc, rules, self.authorship)
        self.roots = dict(roots or {"messages": Array})
        self.replicas: dict[str, Doc[Any]] = {}
        self.refusals: list[str] = []

    def replica(self, user: str, *, bound: bool = True) -> Doc[Any]:
        """`user`'s replica (made from the room's state when first asked for); `bound`:
        its client id belongs to `user` (False: as one written before ids were bound)."""
        if user not in self.replicas:
            doc: Doc[Any] = Doc()
            doc.apply_update(self.doc.get_update())
            self.replicas[user] = doc
            if bound:
                self.bindings[doc.client_id] = user
        return self.replicas[user]

    def send(self, user: str, update: bytes) -> bytes | None:
        """The server judges `user`'s update; the undo it made, if any."""
        roles = frozenset({"admin"}) if user == MODERATOR else frozenset()
        clocks = decode_state_vector(self.doc.get_state())
        self.rules.check_types(update, clocks, _scanned(update))
        self.rules.start(Writer(user, roles), update, clocks)
        self.doc.apply_update(update)
        outcome = self.rules.finish()
        if outcome is not None:
            self.refusals.append(outcome[1])
        for replica in self.replicas.values():
            replica.apply_update(update)
            if outcome is not None:
                replica.apply_update(outcome[0])
        return outcome[0] if outcome is not None else None

    def edit(self, user: str, change: Change, *, bound: bool = True) -> None:
        """`user` changes their replica in one transaction and sends what it produced."""
        doc = self.replica(user, bound=bound)
        updates: list[bytes] = []
        subscription = doc.observe(lambda event: updates.append(bytes(event.update)))
        with doc.transaction():
            change(doc)
        doc.unobserve(subscription)
        for update in updates:
            self.send(user, update)

    def view(self, doc: Doc[Any] | None = None) -> dict[str, Any]:
        doc = doc or self.doc
        return {name: doc.get(name, type=kind).to_py() for name, kind in self.roots.items()}

    def converged(self) -> dict[str, Any]:
        """The room's view, once every replica's is the same."""
        for replica in self.replicas.values():
            assert self.view(replica) == self.view()
        return self.view()


def one_update(doc: Doc[Any], change: Change) -> bytes:
    """What `change` of `doc`, in one transaction, sends: one update."""
    updates: list[bytes] = []
    subscription = doc.observe(lambda event: updates.append(bytes(event.update)))
    with doc.transaction():
        change(doc)
    doc.unobserve(subscription)
    assert len(updates) == 1
    return updates[0]


def on_messages(change: Callable[[Array[Any]], object]) -> Change:
    """A change of the `messages` array, as a change of the document."""
    return lambda doc: change(doc.get("messages", type=Array))
