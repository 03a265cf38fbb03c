"""Application hooks: your own auth, reactions to every committed change, room lifecycle.

    class MyHooks(Hooks):
        async def authenticate(self, request): return Grant(user="ann", mode="write")
        async def on_change(self, change): index(change.room, change.update)

Every method is optional. `authenticate`, when defined, replaces the JWT check: it is
called once per WebSocket connection and per REST call with an `AuthRequest` (token,
room, the request's headers and cookies); hooks written as `authenticate(token, room)`
are told apart by their signature and called as before. None or an exception refuses the
caller (close 4401 / HTTP 401; the exception's text goes to the log, not to the caller).
`on_change` is driven from the durable log by a stored per-room cursor (server/delivery.py):
after the commit, in seq order per room, at least once per seq; a slow or failing hook
never holds up the room. `on_start` gets the `Rooms` handle, whose `edit(room, user=...)`
makes server-side edits.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from engine.rules.edits import Edit as Edit
from engine.rules.edits import EditChange as EditChange  # re-exported by server
from engine.rules.edits import Verdict as Verdict

if TYPE_CHECKING:
    from server.rooms.access import Rooms

ALLOW = Verdict()

Mode = Literal["read", "write"]
ADMIN_ROLE = "admin"


@dataclass(frozen=True, slots=True)
class Grant:
    """What a caller may do in one room: its user name (recorded in the history) and
    whether it may write. `expires_at` (epoch seconds) closes its sockets then. `role`
    "admin" opens the operator console (`GET /console`); rooms ignore it."""

    user: str | None = None
    mode: Mode = "write"
    expires_at: float | None = None
    role: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in ("read", "write"):
            raise ValueError(f"Grant mode must be 'read' or 'write', not {self.mode!r}")

    @property
    def can_write(self) -> bool:
        return self.mode == "write"

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN_ROLE


@dataclass(frozen=True, slots=True)
class AuthRequest:
    """What `authenticate` may look at: the caller's token (from `Authorization: Bearer`
    or `?token=`, None without one), the room (already checked to be a valid name), and
    the HTTP request's headers and cookies (the WebSocket upgrade's, or the REST call's),
    so a hook can read a session cookie. `origin` is the Origin header (browsers only)."""

    token: str | None
    room: str
    headers: Mapping[str, str] = field(default_factory=dict)
    cookies: Mapping[str, str] = field(default_factory=dict)
    method: str = "GET"
    path: str = ""
    remote: str | None = None

    @property
    def origin(self) -> str | None:
        return self.headers.get("Origin")


@dataclass(frozen=True, slots=True)
class Change:
    """One committed log entry of a room, as `on_change` receives it."""

    room: str
    seq: int
    ts: float
    user: str | None
    update: bytes


class Hooks:
    """Subclass and override what you need; the defaults do nothing (and use JWT auth)."""

    async def authenticate(self, *args: Any, **kwargs: Any) -> Grant | None:
        """Override as `authenticate(self, request: AuthRequest)`, or in the older form
        `authenticate(self, token, room)` (both keep working; see `ask_authenticate`)."""
        raise NotImplementedError  # not overridden: the server checks its JWTs

    async def on_start(self, rooms: Rooms) -> None:
        pass

    async def on_change(self, change: Change) -> None:
        pass

    async def on_load(self, room: str) -> None:
        pass

    async def on_unload(self, room: str) -> None:
        pass

    def check(self, edit: Edit) -> Verdict:
        """Judge a writer's update before it is committed (synchronous: it runs in the
        room's actor, in order). `Verdict.refuse(reason)` has the server undo the whole
        update in the same commit; raising or running past `check_budget_seconds`
        refuses it too (logged, counted as `check_failed`). Only what the update changes
        is described (`edit.changes`); an update that changes nothing is not checked."""
        return ALLOW

    async def on_stateless(self, room: str, user: str | None, payload: str) -> None:
        """A Hocuspocus client's stateless message (relayed to the room's other
        Hocuspocus connections as well; never stored)."""

    @property
    def checks(self) -> bool:
        return type(self).check is not Hooks.check

    @property
    def handles_stateless(self) -> bool:
        return type(self).on_stateless is not Hooks.on_stateless

    @property
    def authenticates(self) -> bool:
        return type(self).authenticate is not Hooks.authenticate

    @property
    def watches_changes(self) -> bool:
        return type(self).on_change is not Hooks.on_change


def ask_authenticate(hooks: Hooks, request: AuthRequest) -> Awaitable[Grant | None]:
    """Call the hook in the form it was written in: one parameter gets the AuthRequest,
    two get (token, room) as hooks written before AuthRequest existed expect."""
    method: Callable[..., Awaitable[Grant | None]] = hooks.authenticate
    if _positional_count(method) == 1:
        return method(request)
    return method(request.token, request.room)


def _positional_count(method: Callable[..., object]) -> int:
    try:
        parameters = inspect.signature(method).parameters.values()
    except (TypeError, ValueError):
        return 2
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in parameters):
        return 2
    return sum(1 for p in parameters if p.kind in kinds)


class HooksNotFound(Exception):
    """`--hooks MODULE:NAME` does not name a Hooks instance or class."""


def load_hooks(spec: str) -> Hooks:
    """`module:NAME` -> a Hooks instance (NAME may be an instance or a class built with
    no arguments).

    Raises:
        HooksNotFound: with one line saying what is wrong.
    """
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise HooksNotFound(f"--hooks {spec!r}: expected MODULE:NAME, e.g. myapp.hooks:MyHooks")
    if os.getcwd() not in sys.path:  # `performer serve` run where the app's module lives
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise HooksNotFound(f"--hooks {spec!r}: cannot import {module_name!r}: {exc}") from exc
    target = getattr(module, attribute, None)
    if target is None:
        raise HooksNotFound(f"--hooks {spec!r}: module {module_name!r} has no {attribute!r}")
    if isinstance(target, type) and issubclass(target, Hooks):
        try:
            return target()
        except Exception as exc:
            raise HooksNotFound(f"--hooks {spec!r}: {attribute}() failed: {exc}") from exc
    if isinstance(target, Hooks):
        return target
    raise HooksNotFound(f"--hooks {spec!r}: {attribute!r} is not a Hooks subclass or instance")
