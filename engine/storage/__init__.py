"""Storage: the log-store contract, its implementations, and the DocStore on top.

LogStore (contract.py)  <- KVLogStore (kv_log.py) on LmdbKV | MemoryKV
                        <- RedisLogStore (redis_log.py)
DocStore (docstore.py)  records, load with snapshot fallback, history, compaction
"""

from engine.storage.compaction import CompactionPolicy, Retention, RoomWindow, should_compact
from engine.storage.contract import LogStore, RoomInfo
from engine.storage.docstore import Append, DocStore, HistoryEntry, LoadedRoom
from engine.storage.kv import KV
from engine.storage.kv_log import KVLogStore
from engine.storage.lmdb_kv import LmdbKV
from engine.storage.memory_kv import MemoryKV

__all__ = [
    "KV",
    "Append",
    "CompactionPolicy",
    "DocStore",
    "HistoryEntry",
    "KVLogStore",
    "LmdbKV",
    "LoadedRoom",
    "LogStore",
    "MemoryKV",
    "Retention",
    "RoomWindow",
    "RoomInfo",
    "should_compact",
]
