"""Presence (Yjs awareness) held by a room: who is here, never persisted.

The rules follow y-protocols' `applyAwarenessUpdate`: a state replaces the known one only
with a newer clock (or the same clock when it announces a removal). Which client ids a
connection may speak for is the server's business; this class only keeps the states.
"""

from __future__ import annotations

from collections.abc import Iterable

from engine.protocol import AwarenessEntry, encode_awareness


class Presence:
    """Awareness states by Yjs client id."""

    def __init__(self) -> None:
        self.states: dict[int, AwarenessEntry] = {}

    def apply(self, entries: Iterable[AwarenessEntry]) -> list[AwarenessEntry]:
        """Keep the entries that are news; returns them (what is worth relaying)."""
        accepted = []
        for entry in entries:
            known = self.states.get(entry.client_id)
            newer = known is None or entry.clock > known.clock
            removal_at_same_clock = (
                known is not None
                and entry.clock == known.clock
                and entry.removed
                and not known.removed
            )
            if not (newer or removal_at_same_clock):
                continue
            if entry.removed:
                self.states.pop(entry.client_id, None)
            else:
                self.states[entry.client_id] = entry
            accepted.append(entry)
        return accepted

    def remove(self, client_ids: Iterable[int]) -> bytes | None:
        """Forget these clients; returns the awareness update that tells the others.

        The removal keeps the state's clock, as y-protocols' `removeAwarenessStates`
        does for remote clients: peers accept a null state at the same clock, and a
        client that reconnects is shown again at its next renewal.
        """
        removed = []
        for client_id in client_ids:
            known = self.states.pop(client_id, None)
            if known is not None:
                removed.append(AwarenessEntry(client_id, known.clock, "null"))
        return encode_awareness(removed) if removed else None

    def encode_all(self) -> bytes | None:
        """Every known state as one awareness update (for a client that just joined)."""
        if not self.states:
            return None
        return encode_awareness(list(self.states.values()))
