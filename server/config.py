"""Every server setting and its default, in one frozen dataclass."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from engine.rules.model import Rules
from engine.storage import CompactionPolicy, Retention

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    """What one connection or room may cost the server."""

    max_frame_bytes: int = 8 * MIB  # larger frames close the socket with 1009
    max_update_bytes: int = 8 * MIB
    max_doc_bytes: int = 512 * MIB
    max_awareness_bytes: int = 64 * 1024
    max_client_ids_per_connection: int = 8
    max_state_vector_entries: int = 100_000
    messages_per_second: float = 5_000.0  # token bucket per connection; excess is delayed
    message_burst: int = 10_000
    send_buffer_bytes: int = 16 * MIB  # a client that stops reading is closed past this
    max_inbox: int = 10_000  # messages queued for one room before readers wait
    max_versions: int = 1_000  # named versions per room; more is a 409
    page_bytes: int = 4 * MIB  # a change-feed or history page ends early past this
    streams_per_caller: int = 32  # open change-feed streams per user or token
    page_reads_per_caller: int = 2  # change/history pages read at once per caller
    # bytes of change/history pages (SSE catch-up too) per second per caller, in bursts
    # of one page (server/page_rate.py); 0: no limit
    page_bytes_per_second: int = 32 * MIB
    # pages per second per caller, however small: each counts for at least
    # page_bytes_per_second / pages_per_second bytes; 0: no such minimum
    pages_per_second: int = 32
    # bytes of restores' edits per second per room, in bursts of 4 s of it
    # (server/restore_rate.py); 0: no limit
    restore_bytes_per_second: int = 256 * 1024
    stream_write_seconds: float = 30.0  # a change-feed write blocked this long ends it


@dataclass(frozen=True, slots=True)
class ComputeLimits:
    """What JSON views and restores may cost (server/compute_lane.py). Past a limit the
    caller gets 503 with Retry-After."""

    workers: int = 1  # processes (big rooms' snapshots have their own)
    queue: int = 16  # jobs waiting for a worker
    per_caller: int = 2  # jobs queued or running per user or token
    per_room: int = 4  # jobs queued or running per room
    budget_seconds: float = 30.0  # a job running longer has its worker killed
    cache_bytes: int = 64 * MIB  # JSON views kept by (room, seq, types)
    nice: int = 10  # workers' CPU priority below the server's (os.nice); 0 keeps it


@dataclass(frozen=True, slots=True)
class Config:
    """How a server runs. `performer serve` builds one from its flags."""

    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path("./data")
    auth_secret: str | None = None
    # Browser origins that may open WebSockets and make writing REST calls, e.g.
    # ("https://app.example",); empty: only the server's own host; ("*",): any.
    allowed_origins: tuple[str, ...] = ()
    redis_url: str | None = None  # share rooms between processes through Redis Streams
    webhook_url: str | None = None  # POST each room's changes here (server/webhooks.py)
    webhook_secret: str | None = None  # signs them; None only with webhook_unsigned
    webhook_unsigned: bool = False
    webhook_timeout_seconds: float = 10.0  # a receiver slower than this is a failed attempt
    webhook_retry_seconds: float = 1.0  # first retry delay; the rest of server/parking.py's
    # schedule (about a day in all) keeps its proportions to it
    webhook_probe_seconds: float = 300.0  # how often a parked room is tried again
    feed_heartbeat_seconds: float = 15.0  # a comment line on an idle change feed
    feed_queue_entries: int = 10_000  # how far a feed subscriber may lag before it is cut
    console_open: bool = False  # without auth: serve /console beyond localhost too
    map_size: int = 256 * MIB
    fsync: bool = True
    idle_unload_seconds: float = 30.0
    awareness_flush_seconds: float = 0.03
    shutdown_timeout_seconds: float = 8.0
    heartbeat_seconds: float = 30.0
    archive_dir: Path | None = None  # the continuous archive (server/archive.py)
    backup_dir: Path | None = None  # scheduled backups go here (server/backups.py)
    backup_every_seconds: float = 3600.0
    backup_keep: int = 24  # the newest N backups are kept, older ones deleted
    history_fold_seconds: float = 60.0  # how often retention looks for history to fold
    history_fold_min_entries: int = 100  # fold once at least this many are past the edge
    limits: Limits = field(default_factory=Limits)
    compute: ComputeLimits = field(default_factory=ComputeLimits)
    compaction: CompactionPolicy = field(default_factory=CompactionPolicy)
    retention: Retention = field(default_factory=Retention)
    static_dir: Path = Path(__file__).parent / "static"
    rules: Rules = field(default_factory=Rules)  # rules on parts of rooms (--rules FILE)
    check_budget_seconds: float = 0.05  # Hooks.check running longer refuses the edit
