"""Log records decoded from views of the store's memory, each update copied once.

A change-feed page of megabyte updates used to copy every update twice in the reading
thread, holding the interpreter's lock all the while (a megabyte copy is a fresh mmap
under `return_big_buffers`, faulted in page by page): once out of the store, once more
when CBOR decoded the record. Here the record's fields are walked in place (as history
heads are) and the update is copied straight from the store's memory into its own bytes,
once; the checksum runs over the view (zlib lets go of the lock for that).
"""

from __future__ import annotations

import zlib

from engine.errors import StorageError
from engine.storage.records import (
    SCHEMA_VERSION,
    HeadReader,
    RecordError,
    UpdateHead,
    UpdateRecord,
    head_from_fields,
    read_head_fields,
    unpack,
)

_CRC_BYTES = 4
READ_ERRORS = (StorageError, KeyError, TypeError, ValueError)


def record_view(value: bytes | memoryview) -> tuple[UpdateHead, memoryview]:
    """A record's head and a view of its update within `value` (as long as `value`
    lives: inside the store's read transaction for a view of LMDB's map).

    Raises:
        RecordError, SchemaVersionError: as `unpack`.
    """
    view = memoryview(value)
    if len(view) < _CRC_BYTES:
        raise RecordError(f"record of {len(view)} bytes is truncated")
    body = view[_CRC_BYTES:]
    if zlib.crc32(body) != int.from_bytes(view[:_CRC_BYTES], "big"):
        raise RecordError("checksum mismatch (torn or corrupted write)")
    reader = HeadReader(body)
    try:
        fields = read_head_fields(reader)
    except (ValueError, IndexError, KeyError, TypeError, UnicodeDecodeError, RecursionError):
        record = UpdateRecord.from_map(unpack(view), 0)  # a form the walker does not know
        head = UpdateHead(record.ts, record.user, record.clients, len(record.update),
                          record.restore_of, record.rejected)  # fmt: skip
        return head, memoryview(record.update)
    if fields.get("v") != SCHEMA_VERSION:
        unpack(view)  # raises the error a full decode gives
    head = head_from_fields(fields)
    return head, body[reader.update_end - head.size : reader.update_end]


def unpack_update_view(value: bytes | memoryview, seq: int) -> UpdateRecord:
    """`UpdateRecord.from_map(unpack(value), seq)`, with the update copied out of
    `value` once (no whole copy of the record first).

    Raises:
        RecordError, SchemaVersionError: as `unpack`.
    """
    head, update = record_view(value)
    return UpdateRecord(
        seq, head.ts, head.user, head.clients, bytes(update), head.restore_of, head.rejected
    )


def record_or_error(seq: int, value: bytes | memoryview) -> UpdateRecord | Exception:
    """The decoded record, or why it does not read (raised by the caller once it knows
    the record is one it was asked for)."""
    try:
        return unpack_update_view(value, seq)
    except READ_ERRORS as exc:
        return exc
