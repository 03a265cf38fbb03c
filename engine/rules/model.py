"""The rules file: which parts of a room a writer may change, declared in TOML.

    [[rule]]
    rooms = "*"                    # a room name, or a prefix ending in * (default "*")
    path = "messages"              # a root, then [*] (every entry of an array) or .KEY
    type = "array"                 # a root keeps this type: array | map | text | xml
    entries = "author"             # an entry is changed or deleted only by its author
    moderators = ["role:admin"]    # ... or by these users / roles
    author_field = "user"          # an entry's `user` field is its author's name

    [[rule]]
    path = "messages[*].reactions"
    user_keys = "\\t"               # a key is set or deleted only by the user it names
                                   # (after the last TAB; "" means the whole key)

    [[rule]]
    path = "settings"
    write = ["role:admin", "ann"]  # who may change the part at all ("nobody": read-only)
    append_only = true             # insert yes; delete or overwrite no

Every rule that matches a room applies to it. Users and roles are the ones the token (or
the Grant from `Hooks.authenticate`) names. A file that says something the server cannot
enforce is refused at start, in one line naming the rule and what is wrong: a rules file
that is silently half-read protects nothing.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from engine.errors import RulesInvalid

RootType = Literal["array", "map", "text", "xml"]
ROOT_TYPES: tuple[str, ...] = ("array", "map", "text", "xml")
EntryPolicy = Literal["anyone", "author"]
ROLE_PREFIX = "role:"

_NAME = r"[A-Za-z_][A-Za-z0-9_\-]*"
_SEGMENT = re.compile(rf"\[\*\]|\.({_NAME})")
_ROOT = re.compile(_NAME)
_FIELDS = frozenset(
    (
        "rooms",
        "path",
        "type",
        "write",
        "append_only",
        "entries",
        "moderators",
        "author_field",
        "user_keys",
    )
)

Fail = Callable[[str], RulesInvalid]

Segment = str | None
"""One step of a path below its root: a map key, or None for "every entry" ([*])."""


@dataclass(frozen=True, slots=True)
class Who:
    """A set of users and roles (`anyone`: no restriction)."""

    users: frozenset[str] = frozenset()
    roles: frozenset[str] = frozenset()
    anyone: bool = False

    def allows(self, user: str | None, roles: Iterable[str] = ()) -> bool:
        if self.anyone:
            return True
        if user is not None and user in self.users:
            return True
        return not self.roles.isdisjoint(roles)


ANYONE = Who(anyone=True)
NOBODY = Who()


@dataclass(frozen=True, slots=True)
class PartRule:
    """One `[[rule]]`: what may happen to the part of a document at `root` + `below`."""

    number: int  # 1-based, as in error messages
    rooms: str
    root: str
    below: tuple[Segment, ...]
    type: RootType | None = None
    write: Who = ANYONE
    append_only: bool = False
    entries: EntryPolicy = "anyone"
    moderators: Who = NOBODY
    author_field: str | None = None
    user_keys: str | None = None  # separator before the user's name ("": the whole key)

    @property
    def path(self) -> str:
        return self.root + "".join("[*]" if step is None else f".{step}" for step in self.below)

    def applies_to(self, room: str) -> bool:
        if self.rooms.endswith("*"):
            return room.startswith(self.rooms[:-1])
        return room == self.rooms

    def key_user(self, key: str) -> str | None:
        """The user a key of a `user_keys` map belongs to."""
        if self.user_keys is None:
            return None
        if not self.user_keys:
            return key
        _, found, user = key.rpartition(self.user_keys)
        return user if found else None


@dataclass(frozen=True, slots=True)
class Rules:
    """Every rule of a file, in file order."""

    rules: tuple[PartRule, ...] = ()
    anonymous_writers: bool = False  # an open server: rules naming users cannot hold

    def for_room(self, room: str) -> tuple[PartRule, ...]:
        return tuple(rule for rule in self.rules if rule.applies_to(room))

    def __bool__(self) -> bool:
        return bool(self.rules)


def load_rules(path: str | Path) -> Rules:
    """Read and check a rules file.

    Raises:
        RulesInvalid: one line: the file, the rule and what is wrong.
    """
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesInvalid(f"rules file {str(source)!r}: {exc.strerror or exc}") from exc
    return parse_rules(text, source.name)


def parse_rules(text: str, source: str = "rules") -> Rules:
    """`load_rules` for a file's text (`source` names it in errors)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesInvalid(f"{source}: not valid TOML: {exc}") from exc
    extra = sorted(set(data) - {"rule"})
    if extra:
        raise RulesInvalid(f"{source}: unknown table {extra[0]!r} (rules are [[rule]] tables)")
    tables = data.get("rule", [])
    if not isinstance(tables, list):
        raise RulesInvalid(f"{source}: 'rule' must be an array of tables ([[rule]])")
    rules = tuple(_rule(source, number, table) for number, table in enumerate(tables, 1))
    return Rules(rules)


def _rule(source: str, number: int, table: Mapping[str, Any]) -> PartRule:
    where = f"{source}: rule {number}"
    path = table.get("path")
    if isinstance(path, str):
        where += f" ({path})"

    def fail(what: str) -> RulesInvalid:
        return RulesInvalid(f"{where}: {what}")

    unknown = sorted(set(table) - _FIELDS)
    if unknown:
        raise fail(f"unknown field {unknown[0]!r} (known: {', '.join(sorted(_FIELDS))})")
    if not isinstance(path, str):
        raise fail("'path' is required: a root name, then [*] or .KEY steps")
    root, below = _parse_path(path, fail)
    rooms = _string(table, "rooms", fail) or "*"
    if "*" in rooms[:-1]:
        raise fail(f"'rooms' is a name or a prefix ending in *, not {rooms!r}")
    kind = _string(table, "type", fail)
    if kind is not None and kind not in ROOT_TYPES:
        raise fail(f"'type' must be one of {', '.join(ROOT_TYPES)}, not {kind!r}")
    if kind is not None and below:
        raise fail("'type' applies to a root only (a path without [*] or .KEY)")
    entries = _string(table, "entries", fail) or "anyone"
    if entries not in ("anyone", "author"):
        raise fail(f"'entries' must be 'anyone' or 'author', not {entries!r}")
    moderators = _who(table, "moderators", fail, default=NOBODY)
    author_field = _string(table, "author_field", fail)
    user_keys = _string(table, "user_keys", fail)
    if "moderators" in table and entries != "author" and user_keys is None:
        raise fail("'moderators' needs entries = 'author' or 'user_keys'")
    if author_field is not None and entries != "author":
        raise fail("'author_field' needs entries = 'author'")
    append_only = table.get("append_only", False)
    if not isinstance(append_only, bool):
        raise fail("'append_only' must be true or false")
    rule = PartRule(
        number=number,
        rooms=rooms,
        root=root,
        below=below,
        type=kind,  # type: ignore[arg-type]  # checked against ROOT_TYPES above
        write=_who(table, "write", fail, default=ANYONE),
        append_only=append_only,
        entries=entries,  # type: ignore[arg-type]  # checked above
        moderators=moderators,
        author_field=author_field,
        user_keys=user_keys,
    )
    if rule == PartRule(number, rooms, root, below):
        raise fail("says nothing: give at least one of type, write, append_only, entries, "
                   "user_keys")  # fmt: skip
    return rule


def _parse_path(path: str, fail: Fail) -> tuple[str, tuple[Segment, ...]]:
    root = _ROOT.match(path)
    if root is None:
        raise fail("'path' must start with a root name (letters, digits, _ or -)")
    steps: list[Segment] = []
    at = root.end()
    while at < len(path):
        step = _SEGMENT.match(path, at)
        if step is None:
            raise fail(f"'path' has an unexpected {path[at:]!r}: steps are [*] or .KEY")
        steps.append(step.group(1))
        at = step.end()
    return root.group(0), tuple(steps)


def _string(table: Mapping[str, Any], name: str, fail: Fail) -> str | None:
    value = table.get(name)
    if value is not None and not isinstance(value, str):
        raise fail(f"{name!r} must be a string")
    return value


def _who(table: Mapping[str, Any], name: str, fail: Fail, *, default: Who) -> Who:
    """ "anyone", "nobody", or a list of user names and "role:NAME"."""
    value = table.get(name)
    if value is None:
        return default
    if value == "anyone":
        return ANYONE
    if value == "nobody":
        return NOBODY
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise fail(f"{name!r} must be 'anyone', 'nobody' or a list of users and 'role:NAME'")
    roles = {item[len(ROLE_PREFIX) :] for item in value if item.startswith(ROLE_PREFIX)}
    users = {item for item in value if not item.startswith(ROLE_PREFIX)}
    if "" in roles:
        raise fail(f"{name!r}: 'role:' needs a role name")
    return Who(frozenset(users), frozenset(roles))
