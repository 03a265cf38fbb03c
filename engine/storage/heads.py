"""A history page's fields, read without the updates they describe.

A history page lists who wrote what when and how big, never the update itself; a page of
megabyte updates used to copy every one of them out of the store only to report its
length. Here a record is read where it lies: on LMDB as a view of the map inside the read
transaction (runs walked, not decoded), on Redis as its first and last `HEAD_WINDOW`
bytes, which hold every field but the update (the record's start holds ts, user and
clients, its end what a restore or a refusal added).

Both give what decoding the whole record gives (tests/engine/test_history_heads.py). On
LMDB the record's checksum is still checked (over the view; zlib lets go of the
interpreter's lock for that). On Redis a record cut to its ends cannot be checksummed:
Redis stores each record whole within the append's script, so there is no torn write to
catch, and a record whose ends do not read as a head is fetched whole and checked.
"""

from __future__ import annotations

from typing import NamedTuple

from engine.errors import StorageError
from engine.storage.records import (
    SCHEMA_VERSION,
    HeadReader,
    UpdateHead,
    head_from_fields,
    read_head_fields,
    unpack_update_head,
)

HEAD_WINDOW = 512  # bytes of a record's start (and of its end) a Redis head read fetches
_CRC_BYTES = 4
READ_ERRORS = (StorageError, KeyError, TypeError, ValueError)


class StoredHead(NamedTuple):
    """One log entry as a history page needs it.

    Args:
        size: the stored record's bytes, which a page's byte budget counts (as it counts
            them when whole records are read), so pages end where they always did.
        head: the record's fields, or the error reading it gave (the caller names the
            room and seq in the error it raises).
    """

    seq: int
    size: int
    head: UpdateHead | Exception


def head_of(record: bytes | memoryview) -> UpdateHead | Exception:
    """The record's head (checksum and schema checked), or why it does not read."""
    try:
        return unpack_update_head(record)
    except READ_ERRORS as exc:
        return exc


def head_from_ends(start: bytes, end: bytes, size: int) -> UpdateHead | None:
    """The head of a record of `size` bytes from its first bytes `start` and its last
    bytes `end`; None when those do not hold it (a long user name, a big refusal, a
    newer schema): then the record is read whole, which also names the error."""
    if len(start) >= size:
        return None
    body = memoryview(start)[_CRC_BYTES:]
    tail = memoryview(end)

    def after_update(update_end: int) -> memoryview:
        left = size - _CRC_BYTES - update_end
        if not 0 <= left <= len(tail):
            raise ValueError("the record's end was not read")
        return tail[len(tail) - left :]

    try:
        fields = read_head_fields(HeadReader(body), after_update)
        if fields.get("v") != SCHEMA_VERSION:
            return None
        return head_from_fields(fields)
    except (ValueError, IndexError, KeyError, TypeError, UnicodeDecodeError, RecursionError):
        return None
