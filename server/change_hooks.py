"""The on_change hook as a delivery consumer: one call per log entry, in seq order.

A hook that raises or runs past `timeout` has still been given the change: the error is
logged with the room and seq and counted (`performer_delivery_errors{consumer="hooks"}`),
and delivery moves on. Retrying a hook that fails the same way every time would stall
that room's changes forever; applications that need retries keep their own.
"""

from __future__ import annotations

import asyncio
import logging

from engine.storage.records import UpdateRecord
from server.hooks import Change, Hooks
from server.metrics import Metrics

log = logging.getLogger(__name__)


class ChangeHookConsumer:
    name = "hooks"
    batch_limit = 100
    min_interval = 0.0
    max_attempts: int | None = None
    retry_seconds = 0.5
    probe_seconds: float | None = None

    def __init__(self, hooks: Hooks, metrics: Metrics, *, timeout: float = 30.0) -> None:
        self.hooks = hooks
        self.metrics = metrics
        self.timeout = timeout

    async def deliver(self, room: str, records: list[UpdateRecord]) -> int:
        for record in records:
            change = Change(room, record.seq, record.ts, record.user, record.update)
            try:
                async with asyncio.timeout(self.timeout):
                    await self.hooks.on_change(change)
            except Exception as exc:
                self.metrics.delivery_errors.labels(self.name).inc()
                log.error("on_change hook failed for room %r seq %d: %r", room, record.seq, exc)
        return records[-1].seq
