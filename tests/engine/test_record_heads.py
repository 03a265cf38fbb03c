"""An update record's head (everything but the update, and the update's size) read
without decoding the update agrees with a full decode, for every record either encoder
writes; anything else is refused as a full decode would refuse it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.errors import SchemaVersionError
from engine.storage.records import (
    RecordError,
    UpdateHead,
    UpdateRecord,
    pack,
    pack_update,
    unpack,
    unpack_update_head,
)

users = st.none() | st.text(max_size=40)
clients = st.lists(st.integers(min_value=0, max_value=2**70), max_size=6).map(tuple)
restores = st.none() | st.integers(min_value=0, max_value=2**64 + 3)
stamps = st.floats(allow_nan=False, allow_infinity=False)


def head_of_full_decode(value: bytes) -> UpdateHead:
    record = UpdateRecord.from_map(unpack(value), 1)
    return UpdateHead(record.ts, record.user, record.clients, len(record.update), record.restore_of)


@given(stamps, users, clients, st.binary(max_size=70_000), restores)
def test_heads_agree_with_a_full_decode(
    ts: float, user: str | None, ids: tuple[int, ...], update: bytes, restore_of: int | None
) -> None:
    fast = pack_update(ts, user, ids, update, restore_of)
    general = pack(UpdateRecord(0, ts, user, ids, update, restore_of).to_map())
    for value in (fast, general):
        assert unpack_update_head(value) == head_of_full_decode(value)


def test_broken_records_are_refused_like_a_full_decode() -> None:
    value = pack_update(1.0, "u", (1,), b"abc")
    with pytest.raises(RecordError):
        unpack_update_head(value[:-1])
    with pytest.raises(RecordError):
        unpack_update_head(b"\x00")
    newer = pack({"v": 2, "ts": 1.0, "user": None, "clients": [], "u": b""})
    with pytest.raises(SchemaVersionError):
        unpack_update_head(newer)
