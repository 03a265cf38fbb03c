"""A room's presence relay: coalesced, owned, never persisted.

Each connection may speak only for the Yjs client ids it announced first (at most a few);
its awareness messages are coalesced to the newest one, and the room relays all changes
of a short window as ONE awareness message to everybody. So 500 users moving cursors cost
O(users) frames per window instead of O(users^2) frames.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from engine.awareness import Presence
from engine.errors import ProtocolError
from engine.protocol import (
    AwarenessEntry,
    AwarenessUpdate,
    decode_awareness,
    encode,
    encode_awareness,
)
from server.rooms.peer import Peer, StatelessPeer

log = logging.getLogger(__name__)


class PresenceRelay:
    def __init__(
        self,
        *,
        room: str,
        peers: dict[int, Peer],
        flush_seconds: float,
        max_ids_per_peer: int,
        publish: Callable[[bytes], None],
        claim: Callable[[Peer, int], bool] = lambda peer, client_id: True,
    ) -> None:
        """`claim(peer, client_id)`: whether the peer's user may announce the id (the
        client-id rule: False for an id bound to another user)."""
        self.room = room
        self.publish = publish
        self.claim = claim
        self.peers = peers
        self.presence = Presence()
        self.owners: dict[int, Peer] = {}
        self.remote_ids: set[int] = set()
        self.flush_seconds = flush_seconds
        self.max_ids_per_peer = max_ids_per_peer
        self._dirty: dict[int, Peer] = {}
        self._handle: asyncio.TimerHandle | None = None

    def states_frame(self) -> bytes | None:
        """Every known state, for a client that joins or asks (query awareness)."""
        payload = self.presence.encode_all()
        return None if payload is None else encode(AwarenessUpdate(payload))

    def local_states(self) -> bytes | None:
        """The states of this process's own clients, for another process that asks
        (it just started following the room and has heard nothing yet)."""
        mine = [self.presence.states[cid] for cid in self.owners if cid in self.presence.states]
        return encode_awareness(mine) if mine else None

    def relay_stateless(self, payload: str, skip: Peer | None = None) -> None:
        """A Hocuspocus stateless message: to every other client that takes them, as it
        is; never stored."""
        for peer in list(self.peers.values()):
            if peer is not skip and isinstance(peer, StatelessPeer):
                peer.send_stateless(payload)

    def mark(self, peer: Peer) -> None:
        """The peer has a new awareness payload; relay it with the next window."""
        self._dirty[peer.peer_id] = peer
        if self._handle is None:
            loop = asyncio.get_running_loop()
            self._handle = loop.call_later(self.flush_seconds, self.flush)

    def flush(self) -> None:
        self._handle = None
        dirty, self._dirty = self._dirty, {}
        accepted: list[AwarenessEntry] = []
        for peer in dirty.values():
            entries = peer.take_awareness()
            if entries and not peer.closed:
                accepted += self.presence.apply(self._owned_by(peer, entries))
        if accepted:
            payload = encode_awareness(accepted)
            self._relay(payload)
            self.publish(payload)

    def apply_remote(self, payload: bytes) -> None:
        """States from another server process's clients (it checked their ownership)."""
        try:
            accepted = self.presence.apply(decode_awareness(payload))
        except ProtocolError:
            log.warning("room %r: undecodable awareness from another node", self.room)
            return
        for entry in accepted:
            if entry.removed:
                self.remote_ids.discard(entry.client_id)
            else:
                self.remote_ids.add(entry.client_id)
        if accepted:
            self._relay(encode_awareness(accepted))

    def _relay(self, payload: bytes, skip: Peer | None = None) -> None:
        frame = encode(AwarenessUpdate(payload))
        for peer in self.peers.values():
            if peer is not skip:
                peer.send(frame)

    def _owned_by(self, peer: Peer, entries: list[AwarenessEntry]) -> list[AwarenessEntry]:
        """Keep the entries for client ids this peer owns, claiming new ones up to a cap."""
        mine = []
        for entry in entries:
            owner = self.owners.get(entry.client_id)
            if owner is None and entry.client_id in self.remote_ids:
                continue  # a client on another server process owns it
            if owner is None and entry.removed:
                continue  # a removal claims nothing (clients echo others' departures)
            if owner is None:
                owned = sum(1 for p in self.owners.values() if p is peer)
                if owned >= self.max_ids_per_peer:
                    log.debug(
                        "room %r: peer %d claims too many client ids", self.room, peer.peer_id
                    )
                    continue
                if not self.claim(peer, entry.client_id):
                    continue  # the id is bound to another user
                self.owners[entry.client_id] = peer
            elif owner is not peer:
                continue
            mine.append(entry)
        return mine

    def remove_peer(self, peer: Peer) -> None:
        """Drop a departed peer's states and tell everybody else."""
        ids = [cid for cid, owner in self.owners.items() if owner is peer]
        for cid in ids:
            del self.owners[cid]
        self._dirty.pop(peer.peer_id, None)
        payload = self.presence.remove(ids)
        if payload is not None:
            self._relay(payload, skip=peer)
            self.publish(payload)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
