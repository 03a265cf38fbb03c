"""Hooks the hooks benchmark starts servers with (`--hooks benchmarks.apps.hooks_app:X`)."""

from __future__ import annotations

import asyncio

from server import Change, Hooks


class SlowHook(Hooks):
    """Takes a second over every change (an indexer behind a slow API)."""

    async def on_change(self, change: Change) -> None:
        await asyncio.sleep(1.0)


class FailingHook(Hooks):
    """Raises on every change."""

    async def on_change(self, change: Change) -> None:
        raise RuntimeError(f"cannot index {change.room} seq {change.seq}")
