"""A verified token's claims are remembered, so a caller repeating requests costs a
lookup rather than an HMAC and a JSON decode on the event loop each time; what was
remembered never outlives the token, and a token that failed is never remembered."""

from __future__ import annotations

import time

import jwt
import pytest

from engine.errors import PermissionDenied, Unauthorized
from server import auth
from server.auth import Authorizer, issue_token

SECRET = "remembered-" + "0123456789abcdef" * 4


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    real = jwt.decode

    def counted(token: str, *args: object, **kwargs: object) -> object:
        seen.append(token)
        return real(token, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(jwt, "decode", counted)  # server.auth calls jwt.decode
    return seen


def test_a_token_is_verified_once_for_many_requests(decodes: list[str]) -> None:
    authorizer = Authorizer(SECRET)
    token = issue_token(SECRET, "team", read_only=True, user="ann")
    grants = [authorizer.grant(token, "team") for _ in range(50)]
    assert len(decodes) == 1
    assert {(g.user, g.mode) for g in grants} == {("ann", "read")}
    with pytest.raises(PermissionDenied):  # the room is still checked on every request
        authorizer.grant(token, "other")


def test_a_remembered_token_still_expires(decodes: list[str]) -> None:
    authorizer = Authorizer(SECRET)
    token = issue_token(SECRET, "team", ttl=1)
    authorizer.grant(token, "team")
    time.sleep(1.2)
    with pytest.raises(Unauthorized, match="expired"):
        authorizer.grant(token, "team")


def test_a_bad_token_is_checked_every_time(decodes: list[str]) -> None:
    authorizer = Authorizer(SECRET)
    head, body, signature = issue_token(SECRET, "team").split(".")
    forged = f"{head}.{body}.{signature[:-4]}AAAA"
    for _ in range(3):
        with pytest.raises(Unauthorized):
            authorizer.grant(forged, "team")
    assert len(decodes) == 3


def test_only_so_many_tokens_are_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "REMEMBERED_TOKENS", 3)
    authorizer = Authorizer(SECRET)
    tokens = [issue_token(SECRET, "team", user=f"u{i}") for i in range(10)]
    for token in tokens:
        authorizer.grant(token, "team")
    assert list(authorizer._verified) == tokens[-3:]
