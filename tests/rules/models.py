"""The reference model of the rules on the chat's messages, on plain values: what the
property tests (tests/rules/test_rules_properties.py, test_rules_attacks.py) compare the
server's document with after every step."""

from __future__ import annotations

from typing import Any, Protocol


class MessageRules(Protocol):
    """The rule set a test drew (a dataclass of each test)."""

    @property
    def writers(self) -> tuple[str, ...] | None: ...  # None: anyone
    @property
    def append_only(self) -> bool: ...
    @property
    def by_author(self) -> bool: ...
    @property
    def moderator(self) -> bool: ...  # u2 moderates (with by_author)
    @property
    def own_reactions(self) -> bool: ...
    @property
    def by_client_id(self) -> bool: ...  # (with by_author) the poster is the author


class MessagesModel:
    """What the rules allow of `messages`: an author is the `user` field's name, or with
    `by_client_id` the user who posted it (whoever it names)."""

    def __init__(self, rules: MessageRules) -> None:
        self.rules = rules
        self.messages: list[dict[str, Any]] = []
        self.posters: list[str] = []

    def checked(self, value: Any) -> bool:
        """Whether a `Hooks.check` lets the value through (no hook here)."""
        return True

    def may_write(self, user: str) -> bool:
        return self.rules.writers is None or user in self.rules.writers

    def may_change(self, user: str, at: int) -> bool:
        if not self.may_write(user) or self.rules.append_only:
            return False
        if not self.rules.by_author:
            return True
        author = self.posters[at] if self.rules.by_client_id else self.messages[at]["user"]
        return author == user or (self.rules.moderator and user == "u2")

    def post(self, user: str, author: str, text: str) -> None:
        if not self.checked(text) or not self.may_write(user):
            return
        if not self.rules.by_author or self.rules.by_client_id or author == user:
            self.messages.append({"user": author, "text": text, "reactions": {}})
            self.posters.append(user)

    def delete(self, user: str, at: int) -> None:
        if self.may_change(user, at):
            del self.messages[at]
            del self.posters[at]

    def text(self, user: str, at: int, text: str) -> None:
        if self.checked(text) and self.may_change(user, at):
            self.messages[at]["text"] = text

    def react(self, user: str, at: int, key: str, on: bool) -> None:
        reactions = self.messages[at]["reactions"]
        if on == (key in reactions):
            return  # nothing changes, whatever is judged
        own = key.endswith("\t" + user)
        allowed = own if self.rules.own_reactions else self.may_change(user, at)
        if allowed and on:
            reactions[key] = True
        elif allowed:
            del reactions[key]
