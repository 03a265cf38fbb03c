"""Prometheus metrics, one registry per app (tests run several apps in one process)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from server.compute_lane import ComputeLane
    from server.page_rate import PageRate
    from server.page_reads import PageReads
    from server.restore_rate import RestoreRate

BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0)
STALL_BUCKETS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)
LOOP_WATCH_SECONDS = 0.05


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.connections = Gauge("performer_connections", "Open WebSocket connections", registry=r)
        self.rooms_loaded = Gauge("performer_rooms_loaded", "Rooms in memory", registry=r)
        self.updates = Counter("performer_updates", "Updates accepted and stored", registry=r)
        self.update_bytes = Counter("performer_update_bytes", "Bytes of updates stored", registry=r)
        self.commit_seconds = Histogram(
            "performer_commit_seconds",
            "Durable commit latency (one fsync)",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.commit_batch = Histogram(
            "performer_commit_batch_size",
            "Updates per group commit",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.commit_failures = Counter("performer_commit_failures", "Failed commits", registry=r)
        self.rejected = Counter(
            "performer_rejected_messages", "Messages rejected, by reason", ["reason"], registry=r
        )
        self.compactions = Counter("performer_compactions", "Snapshots written", registry=r)
        self.delivered = Counter(
            "performer_delivered_entries",
            "Log entries delivered to a consumer (hooks, webhook)",
            ["consumer"],
            registry=r,
        )
        self.delivery_errors = Counter(
            "performer_delivery_errors",
            "Failed deliveries (a hook that raised or timed out, a webhook attempt that failed)",
            ["consumer"],
            registry=r,
        )
        self.parked_rooms = Gauge(
            "performer_parked_rooms",
            "Rooms whose deliveries are parked after too many failed attempts",
            ["consumer"],
            registry=r,
        )
        self.loop_stalls = Histogram(
            "performer_loop_stall_seconds",
            "How late the event loop woke a timer (every 50 ms): work that held the loop",
            buckets=STALL_BUCKETS,
            registry=r,
        )
        self.feed_subscribers = Gauge(
            "performer_feed_subscribers", "Open change-feed subscriptions", registry=r
        )

        self.backup_last_success = Gauge(
            "performer_backup_last_success_timestamp_seconds",
            "When the last scheduled backup finished (epoch seconds; 0: none yet)",
            registry=r,
        )
        self.backup_bytes = Gauge(
            "performer_backup_bytes", "Size of the last scheduled backup", registry=r
        )
        self.backup_seconds = Gauge(
            "performer_backup_duration_seconds", "How long the last scheduled backup took",
            registry=r,
        )  # fmt: skip
        self.backup_failures = Counter(
            "performer_backup_failures", "Scheduled backups that failed", registry=r
        )

        self.history_folds = Counter(
            "performer_history_folds", "Folds of history past the retention window", registry=r
        )
        self.history_folded_entries = Counter(
            "performer_history_folded_entries", "Log entries folded into snapshots", registry=r
        )

        self.archive_lag = Gauge(
            "performer_archive_lag_seconds",
            "Age of the oldest committed entry not in the archive yet (0: caught up)",
            registry=r,
        )
        self.archive_delay = Histogram(
            "performer_archive_delay_seconds",
            "From commit to archive, for the oldest entry of each shipped batch",
            buckets=(0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0, 15.0, 60.0, 300.0),
            registry=r,
        )

    def watch_compute_lane(self, lane: ComputeLane) -> None:
        """Export the lane's own counts (JSON views and restores) at each scrape."""
        self.registry.register(_LaneCollector(lane))

    def watch_pages(self, reads: PageReads, rate: PageRate) -> None:
        """Export the change/history page limits' refusals and pauses at each scrape."""
        self.registry.register(_PagesCollector(reads, rate))

    def watch_restores(self, rate: RestoreRate) -> None:
        """Export the restore rate's refusals and pauses at each scrape."""
        self.registry.register(_RestoresCollector(rate))

    def observe_commit(self, seconds: float, updates: int, size: int) -> None:
        self.commit_seconds.observe(seconds)
        self.commit_batch.observe(updates)
        self.updates.inc(updates)
        self.update_bytes.inc(size)

    async def watch_loop(self) -> None:
        """Record how late a periodic timer fires: a stall anywhere on the loop (a large
        room decoded, a big frame copied) shows up here, whichever room caused it."""
        while True:
            start = time.monotonic()
            await asyncio.sleep(LOOP_WATCH_SECONDS)
            self.loop_stalls.observe(max(0.0, time.monotonic() - start - LOOP_WATCH_SECONDS))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _LaneCollector(Collector):
    """The compute lane's queue, running jobs and refusals, read when scraped: the lane
    keeps plain counts (it has no business with Prometheus), this turns them into metrics."""

    def __init__(self, lane: ComputeLane) -> None:
        self.lane = lane

    def collect(self) -> Iterator[Metric]:
        lane = self.lane
        yield GaugeMetricFamily(
            "performer_compute_queued", "JSON views and restores waiting for a worker",
            value=lane.waiting,
        )  # fmt: skip
        yield GaugeMetricFamily(
            "performer_compute_running", "JSON views and restores running in a worker",
            value=lane.running,
        )  # fmt: skip
        refused = CounterMetricFamily(
            "performer_compute_refused",
            "Views and restores refused with 503 + Retry-After, by the limit reached "
            "(caller, room, queue)",
            labels=["reason"],
        )
        for reason, count in lane.refused.items():
            refused.add_metric([reason], count)
        yield refused
        yield CounterMetricFamily(
            "performer_compute_timed_out", "Jobs stopped past their time budget (worker replaced)",
            value=lane.timed_out,
        )  # fmt: skip
        yield CounterMetricFamily(
            "performer_compute_abandoned", "Jobs dropped or stopped because their caller left",
            value=lane.abandoned,
        )  # fmt: skip
        yield CounterMetricFamily(
            "performer_compute_jobs", "Jobs handed to a worker", value=lane.jobs
        )


class _PagesCollector(Collector):
    """Change-feed and history pages refused by each per-caller limit, and pages started
    after a pause (server/page_reads.py, server/page_rate.py keep plain counts)."""

    def __init__(self, reads: PageReads, rate: PageRate) -> None:
        self.reads = reads
        self.rate = rate

    def collect(self) -> Iterator[Metric]:
        refused = CounterMetricFamily(
            "performer_pages_refused",
            "Change-feed and history pages refused with 503 + Retry-After, by the limit "
            "reached (reads: pages at once, rate: bytes per second)",
            labels=["reason"],
        )
        refused.add_metric(["reads"], self.reads.refused)
        refused.add_metric(["rate"], self.rate.refused)
        yield refused
        yield CounterMetricFamily(
            "performer_pages_paused",
            "Pages started after a pause of under a second: their caller was just past "
            "--page-bytes-per-second",
            value=self.rate.paused,
        )


class _RestoresCollector(Collector):
    """Restores refused or paused by their room's bytes per second (server/restore_rate.py)."""

    def __init__(self, rate: RestoreRate) -> None:
        self.rate = rate

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "performer_restores_refused",
            "Restores refused with 503 + Retry-After: their room was past "
            "--restore-bytes-per-second",
            value=self.rate.refused,
        )
        yield CounterMetricFamily(
            "performer_restores_paused",
            "Restores started after a pause of under a second: their room was just past "
            "--restore-bytes-per-second",
            value=self.rate.paused,
        )
