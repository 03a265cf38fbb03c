"""Performer Sync engine: the transport-free core (protocol, documents, storage).

Usable on its own from a script::

    from engine import open_store
    store = open_store(data_dir="./data")
    store.history("lobby")
"""

from engine.document import RoomDocument
from engine.errors import (
    CorruptRecord,
    EngineError,
    PermissionDenied,
    ProtocolError,
    QuotaExceeded,
    RoomNameError,
    RoomNotFound,
    SchemaVersionError,
    StorageError,
    UpdateRejected,
)
from engine.storage import Append, CompactionPolicy, DocStore, LmdbKV, MemoryKV, Retention
from engine.store import open_store

__all__ = [
    "Append",
    "CompactionPolicy",
    "CorruptRecord",
    "DocStore",
    "EngineError",
    "LmdbKV",
    "MemoryKV",
    "PermissionDenied",
    "ProtocolError",
    "QuotaExceeded",
    "Retention",
    "RoomDocument",
    "RoomNameError",
    "RoomNotFound",
    "SchemaVersionError",
    "StorageError",
    "UpdateRejected",
    "open_store",
]
