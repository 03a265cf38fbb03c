"""Storage: a small KV boundary and the DocStore built on it."""

from engine.storage.compaction import CompactionPolicy, Retention, should_compact
from engine.storage.docstore import Append, DocStore, HistoryEntry, LoadedRoom
from engine.storage.kv import KV
from engine.storage.lmdb_kv import LmdbKV
from engine.storage.memory_kv import MemoryKV

__all__ = [
    "KV",
    "Append",
    "CompactionPolicy",
    "DocStore",
    "HistoryEntry",
    "LmdbKV",
    "LoadedRoom",
    "MemoryKV",
    "Retention",
    "should_compact",
]
