"""The client's replica of one room from one server, on disk (LMDB) or in memory.

Built on the small KV protocol (`engine.storage.kv`) alone. A client replica needs no
audit trail, so it keeps only its updates, folded into one now and then, and the
*confirmed mark*: the highest local log position known to be durable on the server.

Key layout::

    log:   replica id + seq (u64, big-endian)  ->  a Yjs update (v1)
    meta:  replica id                          ->  CBOR {"v": 1, "server", "room", "confirmed"}

The replica id is a 16-byte hash of (server, room), where the server is the scheme, host,
port and path of the URL. Fixed width, so no replica's keys are a prefix of another's; and
two deployments that both have a room `x` never share a replica.

Folding uses `pycrdt.merge_updates`, which keeps *pending* updates (those whose causal
predecessors have not arrived yet); a `Doc.get_update()` would silently drop them.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from dataclasses import dataclass

import cbor2
from pycrdt import merge_updates
from yarl import URL

from engine.client.shared_kv import StorePath, lease
from engine.errors import SchemaVersionError, StorageError
from engine.storage.kv import KV

SCHEMA_VERSION = 1
FOLD_AFTER = 256  # log entries; folding costs one merge of the whole replica
_SEQ = struct.Struct(">Q")
_ID_BYTES = 16


@dataclass(frozen=True, slots=True)
class ReplicaKey:
    """Which replica: a server (scheme://host:port/path) and a room on it."""

    server: str
    room: str

    @classmethod
    def for_url(cls, url: str | URL, room: str) -> ReplicaKey:
        """The key for `room` at `url` (e.g. "ws://127.0.0.1:8080/rooms")."""
        parsed = URL(str(url).rstrip("/"))
        server = f"{parsed.scheme}://{parsed.host_subcomponent}:{parsed.port}{parsed.path}"
        return cls(server, room)

    @property
    def id(self) -> bytes:
        """The key prefix of this replica (length-prefixed parts, hashed)."""
        parts = (self.server.encode("utf-8"), self.room.encode("utf-8"))
        framed = b"".join(_SEQ.pack(len(part)) + part for part in parts)
        return hashlib.blake2b(framed, digest_size=_ID_BYTES).digest()

    def __str__(self) -> str:
        return f"room {self.room!r} of {self.server}"


class LocalStore:
    """One replica's updates and confirmed mark.

    Marks are positions (seq) in this local log; they only grow, folding included (the
    folded update takes the seq of the newest entry it replaces).

    Args:
        kv: the store.
        key: the replica.
        release: called once by `close()` (gives a shared store back).
    """

    def __init__(self, kv: KV, key: ReplicaKey, release: Callable[[], None] | None = None) -> None:
        self.kv = kv
        self.key = key
        self._id = key.id
        self._release = release
        self.last_seq = 0
        self._entries = 0
        self.confirmed = self._read_confirmed()

    @classmethod
    def open(cls, store_path: StorePath, key: ReplicaKey) -> LocalStore:
        """The replica `key` in the store at `store_path` (None: in memory only).

        Raises:
            ReplicaInUse: another open client in this process holds this replica there.
            StorageError: the store cannot be opened, or holds a record it cannot read.
        """
        held = lease(store_path, key.id, str(key))
        try:
            return cls(held.kv, key, held.release)
        except BaseException:
            held.release()
            raise

    def load(self) -> bytes | None:
        """The whole replica as one update (None if empty); folds the log on the way."""
        entries = self.kv.scan("log", self._id)
        if not entries:
            return None
        self.last_seq = _SEQ.unpack(entries[-1][0][_ID_BYTES:])[0]
        self._entries = len(entries)
        if len(entries) == 1:
            return entries[0][1]
        return self._fold(entries)

    def append(self, update: bytes) -> int:
        """Store `update` durably; returns its seq (the mark that covers it)."""
        seq = self.last_seq + 1
        self.kv.write([("log", self._log_key(seq), update)])
        self.last_seq = seq
        self._entries += 1
        if self._entries >= FOLD_AFTER:
            self._fold(self.kv.scan("log", self._id))
        return seq

    def set_confirmed(self, mark: int) -> None:
        """Record that everything up to `mark` is durable on the server."""
        self.kv.write([("meta", self._id, self._meta(mark))])
        self.confirmed = mark

    def close(self) -> None:
        """Give the store back (once)."""
        release, self._release = self._release, None
        if release is not None:
            release()

    def _fold(self, entries: list[tuple[bytes, bytes]]) -> bytes:
        """Replace every entry by one merged update at the newest entry's seq."""
        try:
            merged = bytes(merge_updates(*(value for _key, value in entries)))
        except ValueError as exc:
            raise StorageError(f"{self.key}: stored updates do not merge: {exc}") from exc
        newest = entries[-1][0]
        self.kv.write(
            [("log", newest, merged), ("meta", self._id, self._meta(self.confirmed))],
            [("log", key) for key, _value in entries[:-1]],
        )
        self._entries = 1
        return merged

    def _log_key(self, seq: int) -> bytes:
        return self._id + _SEQ.pack(seq)

    def _meta(self, confirmed: int) -> bytes:
        record = {
            "v": SCHEMA_VERSION,
            "server": self.key.server,
            "room": self.key.room,
            "confirmed": confirmed,
        }
        return bytes(cbor2.dumps(record))

    def _read_confirmed(self) -> int:
        raw = self.kv.get("meta", self._id)
        if raw is None:
            return 0
        try:
            record = cbor2.loads(raw)
            version, confirmed = record["v"], record["confirmed"]
        except (cbor2.CBORError, TypeError, KeyError) as exc:
            raise StorageError(f"{self.key}: unreadable replica record: {exc}") from exc
        if version != SCHEMA_VERSION:
            raise SchemaVersionError(f"{self.key}: replica record version {version!r}")
        return int(confirmed)
