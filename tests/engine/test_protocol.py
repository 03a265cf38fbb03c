"""The y-protocols codec: round trips, and every malformed input is a ProtocolError."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.errors import ProtocolError
from engine.protocol import (
    AwarenessEntry,
    AwarenessUpdate,
    Message,
    PermissionDeniedMessage,
    QueryAwareness,
    Reader,
    Saved,
    SyncStep1,
    SyncStep2,
    Update,
    decode,
    decode_awareness,
    encode,
    encode_awareness,
    encode_update,
    write_varuint,
)

payloads = st.binary(max_size=300)
messages: st.SearchStrategy[Message] = st.one_of(
    st.builds(SyncStep1, payloads),
    st.builds(SyncStep2, payloads),
    st.builds(Update, payloads),
    st.builds(AwarenessUpdate, payloads),
    st.builds(PermissionDeniedMessage, st.text(max_size=50)),
    st.just(QueryAwareness()),
    st.builds(Saved, st.integers(0, 2**53), st.integers(0, 2**53)),
)


@given(messages)
def test_every_message_round_trips(message: Message) -> None:
    assert decode(encode(message)) == message


@given(messages)
def test_every_truncation_of_a_valid_message_is_a_protocol_error(message: Message) -> None:
    frame = encode(message)
    for cut in range(len(frame)):
        with pytest.raises(ProtocolError):
            decode(frame[:cut])


@given(messages, st.binary(min_size=1, max_size=8))
def test_trailing_bytes_are_a_protocol_error(message: Message, garbage: bytes) -> None:
    with pytest.raises(ProtocolError, match="trailing"):
        decode(encode(message) + garbage)


@given(st.binary(max_size=64))
def test_arbitrary_bytes_decode_or_raise_protocol_error(data: bytes) -> None:
    try:
        decode(data)
    except ProtocolError as exc:
        assert 0 <= exc.offset <= len(data)


@given(st.integers(0, 2**64 - 1))
def test_varuint_round_trips_up_to_64_bits(value: int) -> None:
    out = bytearray()
    write_varuint(out, value)
    assert Reader(bytes(out)).varuint() == value


def test_varuint_over_64_bits_is_rejected() -> None:
    out = bytearray()
    write_varuint(out, 2**64)
    with pytest.raises(ProtocolError, match="64 bits"):
        Reader(bytes(out)).varuint()
    with pytest.raises(ProtocolError, match="64 bits"):
        Reader(b"\xff" * 20 + b"\x01").varuint()


def test_length_past_the_end_names_its_offset() -> None:
    with pytest.raises(ProtocolError) as caught:
        decode(b"\x00\x02\x05ab")
    assert caught.value.offset == 2
    assert "past the end" in caught.value.reason


def test_unknown_message_type_and_sync_step_are_rejected() -> None:
    with pytest.raises(ProtocolError, match="unknown message type 7"):
        decode(b"\x07")
    with pytest.raises(ProtocolError, match="unknown sync step 3"):
        decode(b"\x00\x03\x00")


def test_update_frame_matches_the_generic_encoder() -> None:
    assert encode_update(b"\x01\x02") == encode(Update(b"\x01\x02"))


states = st.one_of(
    st.just("null"),
    st.dictionaries(st.text(max_size=8), st.text(max_size=8)).map(
        lambda d: json.dumps(d, ensure_ascii=False)
    ),
)


@given(
    st.lists(
        st.builds(AwarenessEntry, st.integers(0, 2**53), st.integers(0, 2**32), states), max_size=5
    )
)
def test_awareness_round_trips_with_utf8_lengths(entries: list[AwarenessEntry]) -> None:
    assert decode_awareness(encode_awareness(entries)) == entries


def test_awareness_with_invalid_json_is_rejected() -> None:
    payload = encode_awareness([AwarenessEntry(1, 1, "{not json")])
    with pytest.raises(ProtocolError, match="not valid JSON"):
        decode_awareness(payload)


def test_deeply_nested_awareness_json_is_a_protocol_error_not_a_crash() -> None:
    payload = encode_awareness([AwarenessEntry(1, 1, "[" * 100_000 + "]" * 100_000)])
    with pytest.raises(ProtocolError):
        decode_awareness(payload)


def _reference_varuint(buf: bytes, pos: int) -> tuple[int, int] | None:
    """lib0's readVarUint, written plainly: (value, next position), or None where the
    reader must refuse (truncated, or past 64 bits)."""
    result = shift = 0
    while True:
        if pos >= len(buf) or shift >= 64:
            return None
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return (result, pos) if result < 2**64 else None
        shift += 7


@given(st.binary(max_size=24), st.integers(0, 24))
def test_varuint_reads_as_lib0_does_or_refuses(data: bytes, start: int) -> None:
    reader = Reader(data)
    reader.pos = start
    expected = _reference_varuint(data, start)
    if expected is None:
        with pytest.raises(ProtocolError):
            reader.varuint()
        return
    assert (reader.varuint(), reader.pos) == expected
