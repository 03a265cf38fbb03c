"""Presence (awareness) chores the client does on its own."""

from __future__ import annotations

import asyncio

from pycrdt import Awareness

RENEWAL = 15.0  # seconds; peers time a silent presence out after 30 (y-protocols)


def forget_others(awareness: Awareness) -> None:
    """Drop every peer's state: offline, we cannot know who is still there.

    y-websocket does the same when its connection closes.
    """
    others = [cid for cid in awareness.states if cid != awareness.client_id]
    if others:
        awareness.remove_awareness_states(others, "connection closed")


async def keep_alive(awareness: Awareness) -> None:
    """Re-announce our presence before peers time it out; runs until cancelled."""
    while True:
        await asyncio.sleep(RENEWAL)
        state = awareness.get_local_state()
        if state is not None:
            awareness.set_local_state(state)
