"""The Hocuspocus framing: what `@hocuspocus/provider` 3.x and 4.x send, and what the
server answers, byte for byte; malformed input only ever raises ProtocolError."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine import hocuspocus_protocol as hp
from engine.errors import ProtocolError
from engine.protocol import SyncStep1, Update, decode, encode


def test_the_server_answers_are_the_bytes_the_provider_reads() -> None:
    # varstring("dbg") Auth Authenticated varstring("read-write"), as @hocuspocus/common writes
    assert hp.authenticated("dbg", read_only=False).hex() == "0364626702020a726561642d7772697465"
    assert hp.authenticated("dbg", read_only=True) == b"\x03dbg\x02\x02\x08readonly"
    assert hp.permission_denied("dbg", "no") == b"\x03dbg\x02\x01\x02no"
    assert hp.sync_status("dbg", True) == b"\x03dbg\x08\x01"
    assert hp.sync_status("dbg", False) == b"\x03dbg\x08\x00"
    assert hp.stateless("dbg", "hi") == b"\x03dbg\x05\x02hi"
    assert hp.close_document("dbg", "bye") == b"\x03dbg\x07\x03bye"


def test_a_sync_message_after_the_name_is_a_y_websocket_message() -> None:
    inner = encode(Update(b"\x00\x00"))
    envelope = hp.open_envelope(hp.wrap("näme", inner))
    assert (envelope.document, envelope.kind) == ("näme", hp.SYNC)
    assert decode(envelope.as_y_websocket()) == Update(b"\x00\x00")
    reply = hp.open_envelope(b"\x01a\x04" + encode(SyncStep1(b"\x00"))[1:])
    assert decode(reply.as_y_websocket()) == SyncStep1(b"\x00")


def test_tokens_from_the_3x_and_4x_providers() -> None:
    three = hp.open_envelope(hp.token_message("doc", "jwt.token"))
    assert hp.read_token(three.body) == "jwt.token"
    four = hp.open_envelope(hp.token_message("doc", "jwt.token") + b"\x054.8.0")
    assert hp.read_token(four.body) == "jwt.token"
    with pytest.raises(ProtocolError):
        hp.read_token(hp.open_envelope(hp.permission_denied("doc", "x")).body)
    with pytest.raises(ProtocolError):
        hp.read_token(hp.open_envelope(hp.token_message("doc", "t") + b"\x01").body)


def test_client_side_readers() -> None:
    assert hp.read_auth_answer(hp.open_envelope(hp.authenticated("d", True)).body) == (
        hp.AuthAnswer(hp.SCOPE_READ_ONLY, None)
    )
    assert hp.read_auth_answer(hp.open_envelope(hp.permission_denied("d", "r")).body) == (
        hp.AuthAnswer(None, "r")
    )
    assert hp.read_sync_status(hp.open_envelope(hp.sync_status("d", True)).body) is True
    assert hp.read_stateless(hp.open_envelope(hp.stateless("d", "ü")).body) == "ü"
    assert hp.read_close_reason(hp.open_envelope(hp.close_document("d", "r")).body) == "r"
    assert hp.read_close_reason(hp.open_envelope(hp.close_document("d")).body) == ""


@given(st.binary(max_size=64))
def test_arbitrary_bytes_never_crash_the_readers(frame: bytes) -> None:
    try:
        envelope = hp.open_envelope(frame)
    except ProtocolError:
        return
    for reader in (hp.read_token, hp.read_stateless, hp.read_auth_answer, hp.read_sync_status):
        try:
            reader(envelope.body)
        except ProtocolError:
            pass


@given(st.text(max_size=40), st.text(max_size=200))
def test_names_and_payloads_round_trip(name: str, payload: str) -> None:
    envelope = hp.open_envelope(hp.stateless(name, payload))
    assert (envelope.document, envelope.kind) == (name, hp.STATELESS)
    assert hp.read_stateless(envelope.body) == payload
