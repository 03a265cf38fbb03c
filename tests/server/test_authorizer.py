"""The Authorizer in-process, with real signed tokens: who gets which grant, and every way
a token or an authenticate hook is refused. tests/server/test_auth.py checks the same
rules end to end (close codes and HTTP statuses on a running server)."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import jwt
import pytest

from engine.errors import PermissionDenied, Unauthorized
from server import auth
from server.auth import OPEN_GRANT, Authorizer, bearer_token, issue_token, room_matches
from server.hooks import AuthRequest, Grant, Hooks

SECRET = "test-secret-" + "0123456789abcdef" * 4
NOW = 1_900_000_000.0


def claims_of(token: str) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(
        token, SECRET, algorithms=["HS256"], options={"verify_exp": False, "verify_iat": False}
    )  # tokens issued for a set time
    return decoded


def test_issued_tokens_carry_exactly_the_claims_asked_for() -> None:
    assert claims_of(issue_token(SECRET, "team", ttl=60, now=NOW)) == {
        "room": "team", "mode": "write", "exp": int(NOW) + 60, "iat": int(NOW),
    }  # fmt: skip
    reader = claims_of(issue_token(SECRET, "team-*", read_only=True, user="ann", admin=True,
                                   now=NOW))  # fmt: skip
    assert reader == {"room": "team-*", "mode": "read", "exp": int(NOW) + 3600,
                      "iat": int(NOW), "sub": "ann", "role": "admin"}  # fmt: skip
    fresh = claims_of(issue_token(SECRET, "team"))
    assert abs(float(str(fresh["iat"])) - time.time()) < 60


def test_a_write_token_grants_its_room_with_its_user_and_expiry() -> None:
    token = issue_token(SECRET, "team", user="ann", ttl=600)
    grant = Authorizer(SECRET).grant(token, "team")
    assert grant == Grant(user="ann", mode="write", expires_at=claims_of(token)["exp"], role=None)
    assert grant.can_write and not grant.is_admin
    admin = Authorizer(SECRET).grant(issue_token(SECRET, "team", admin=True), "team")
    assert admin.is_admin and admin.user is None


def test_a_read_token_and_a_token_without_a_mode_only_read() -> None:
    authorizer = Authorizer(SECRET)
    assert authorizer.grant(issue_token(SECRET, "team", read_only=True), "team").mode == "read"
    no_mode = jwt.encode({"room": "team", "exp": int(time.time()) + 60}, SECRET, "HS256")
    assert authorizer.grant(no_mode, "team").mode == "read"
    odd = jwt.encode({"room": "team", "exp": int(time.time()) + 60, "mode": "admin",
                      "role": 7, "sub": ""}, SECRET, "HS256")  # fmt: skip
    with pytest.raises(Unauthorized, match="neither read nor write"):
        authorizer.grant(odd, "team")
    odd_role = jwt.encode({"room": "team", "exp": int(time.time()) + 60, "mode": "write",
                           "role": 7, "sub": ""}, SECRET, "HS256")  # fmt: skip
    assert authorizer.grant(odd_role, "team") == Grant(
        user=None, mode="write", expires_at=claims_of(odd_role)["exp"], role=None
    )


def test_a_token_names_one_room_or_a_prefix() -> None:
    authorizer = Authorizer(SECRET)
    assert authorizer.grant(issue_token(SECRET, "team-*"), "team-blue").can_write
    for pattern, room in [("team", "team-blue"), ("tea", "team"), ("team-*", "team"),
                          ("team-*", "other-team-blue")]:  # fmt: skip
        with pytest.raises(PermissionDenied, match=re.escape(repr(pattern))):
            authorizer.grant(issue_token(SECRET, pattern), room)
    assert room_matches("team", "team") and not room_matches("team", "team2")
    assert room_matches("*", "anything") and room_matches("team-*", "team-")


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (None, "a token is required"),
        ("", "a token is required"),
        ("not-a-jwt", "invalid token"),
        (issue_token(SECRET, "team", ttl=-10), "token expired"),
        (issue_token("other-secret-" + "f" * 64, "team"), "invalid token"),
        (jwt.encode({"room": "team", "exp": 2_000_000_000}, SECRET, "HS512"), "invalid token"),
        (jwt.encode({"room": "team"}, SECRET, "HS256"), "invalid token"),
        (jwt.encode({"exp": 2_000_000_000}, SECRET, "HS256"), "invalid token"),
        (jwt.encode({"room": 7, "exp": 2_000_000_000}, SECRET, "HS256"), "not a string"),
    ],
)
def test_every_bad_token_is_unauthorized(token: str | None, reason: str) -> None:
    with pytest.raises(Unauthorized, match=reason):
        Authorizer(SECRET).grant(token, "team")
    with pytest.raises(Unauthorized, match=reason):
        Authorizer(SECRET).pattern(token)


def test_a_tampered_token_is_unauthorized() -> None:
    head, body, signature = issue_token(SECRET, "team").split(".")
    with pytest.raises(Unauthorized, match="invalid token"):
        Authorizer(SECRET).grant(f"{head}.{body}.{signature[:-4]}AAAA", "team")


def test_an_open_server_grants_everyone_write_and_every_room() -> None:
    authorizer = Authorizer(None)
    assert authorizer.open
    assert authorizer.grant(None, "team") is OPEN_GRANT and OPEN_GRANT.can_write
    assert authorizer.pattern("anything") == "*"
    assert not Authorizer(SECRET).open
    assert Authorizer(SECRET).pattern(issue_token(SECRET, "team-*")) == "team-*"
    with pytest.raises(Unauthorized, match="no secret"):
        authorizer._claims("x")


class AllowAnn(Hooks):
    def __init__(self, answer: object = None) -> None:
        self.answer = answer
        self.asked: list[AuthRequest] = []

    async def authenticate(self, request: AuthRequest) -> Grant | None:
        self.asked.append(request)
        if isinstance(self.answer, BaseException):
            raise self.answer
        if self.answer == "hang":
            await asyncio.sleep(3600)
        if self.answer is not None:
            return self.answer  # type: ignore[return-value]
        return Grant(user="ann", mode="read") if request.token == "ann" else None


class TwoArguments(Hooks):
    async def authenticate(self, token: str | None, room: str) -> Grant | None:
        return Grant(user=f"{token}@{room}")


async def test_the_authenticate_hook_replaces_the_token_check() -> None:
    hooks = AllowAnn()
    authorizer = Authorizer(SECRET, hooks)
    assert not authorizer.open and authorizer.pattern(None) == "*"
    assert await authorizer.check("ann", "team") == Grant(user="ann", mode="read")
    assert hooks.asked == [AuthRequest("ann", "team")]
    request = AuthRequest("ann", "team", headers={"X-Session": "s1"}, cookies={"sid": "c"})
    await authorizer.check("ignored", "ignored", request)
    assert hooks.asked[-1] is request
    with pytest.raises(Unauthorized, match="refused by the authenticate hook"):
        await authorizer.check(issue_token(SECRET, "team"), "team")
    assert await Authorizer(None, TwoArguments()).check("tok", "team") == Grant(user="tok@team")


async def test_without_a_hook_check_is_the_token_check() -> None:
    assert Authorizer(SECRET, Hooks()).hooks is None
    grant = await Authorizer(SECRET, Hooks()).check(issue_token(SECRET, "team"), "team")
    assert grant.can_write
    with pytest.raises(PermissionDenied):
        await Authorizer(SECRET).check(issue_token(SECRET, "other"), "team")


async def test_a_misbehaving_hook_is_refused_and_its_error_never_reaches_the_caller(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    leak = RuntimeError("postgres://admin:hunter2@db")
    with pytest.raises(Unauthorized) as refused:
        await Authorizer(None, AllowAnn(leak)).check("ann", "team")
    assert "hunter2" not in str(refused.value) and "see the server log" in str(refused.value)
    assert "hunter2" in caplog.text and "'team'" in caplog.text
    with pytest.raises(Unauthorized, match="not a Grant"):
        await Authorizer(None, AllowAnn("write")).check("ann", "team")
    with pytest.raises(PermissionDenied, match="mine"):  # the engine's own errors pass as is
        await Authorizer(None, AllowAnn(PermissionDenied("mine"))).check("ann", "team")
    monkeypatch.setattr(auth, "AUTHENTICATE_TIMEOUT", 0.2)
    started = time.monotonic()
    with pytest.raises(Unauthorized, match="see the server log"):
        await Authorizer(None, AllowAnn("hang")).check("ann", "team")
    assert time.monotonic() - started < 10


def test_the_token_comes_from_the_bearer_header_or_the_query() -> None:
    assert bearer_token("Bearer abc ", "q") == "abc"
    assert bearer_token("bearer abc", None) == "abc"
    assert bearer_token("Basic abc", "q") == "q"
    assert bearer_token(None, "q") == "q" and bearer_token("", None) is None
    assert bearer_token("Bearerabc", "q") == "q"
