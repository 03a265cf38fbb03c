"""The rules file: what it says is read exactly, and a file the server cannot enforce as
written is refused in one line naming the rule and what is wrong (exit 2 at start)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from engine.errors import RulesInvalid
from engine.rules.model import ANYONE, NOBODY, Who, load_rules, parse_rules

ROOT = Path(__file__).resolve().parents[2]


def test_the_chat_demo_rules_say_what_the_demo_needs() -> None:
    rules = load_rules(ROOT / "examples" / "chat-rules.toml")
    messages, reactions = rules.for_room("lobby")
    assert (messages.path, messages.entries, messages.type) == ("messages", "author", "array")
    assert messages.author_field == "user"
    assert messages.moderators.allows("someone", roles=["admin"])
    assert not messages.moderators.allows("someone", roles=["editor"])
    assert reactions.path == "messages[*].reactions"
    assert reactions.root == "messages" and reactions.below == (None, "reactions")
    assert reactions.key_user("👍\tann") == "ann"
    assert reactions.key_user("👍") is None  # a key naming nobody belongs to nobody


def test_rooms_patterns_and_who() -> None:
    rules = parse_rules(
        """
        [[rule]]
        rooms = "team-*"
        path = "settings"
        write = ["ann", "role:admin"]
        append_only = true

        [[rule]]
        rooms = "lobby"
        path = "notice"
        write = "nobody"
        """
    )
    assert [rule.path for rule in rules.for_room("team-blue")] == ["settings"]
    assert [rule.path for rule in rules.for_room("lobby")] == ["notice"]
    assert rules.for_room("lobby2") == ()
    settings, notice = rules.rules
    assert settings.write == Who(frozenset({"ann"}), frozenset({"admin"}))
    assert settings.write.allows("ann") and settings.write.allows("bo", roles=["admin"])
    assert not settings.write.allows("bo") and not settings.write.allows(None)
    assert notice.write == NOBODY and not notice.write.allows("ann", roles=["admin"])
    assert settings.append_only and parse_rules("").rules == ()
    assert ANYONE.allows(None)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[[rule]]\npath = 'messages'\ntype = 'list'", "rule 1 (messages): 'type' must be one of"),
        ("[[rule]]\npath = 'm'\nentries = 'author'\nmoderatos = []", "unknown field 'moderatos'"),
        ("[[rule]]\ntype = 'array'", "rule 1: 'path' is required"),
        ("[[rule]]\npath = 'm[0]'\nentries = 'author'", "unexpected '[0]'"),
        ("[[rule]]\npath = 'm[*].r'\ntype = 'map'", "'type' applies to a root only"),
        ("[[rule]]\npath = 'm'\nentries = 'owner'", "'entries' must be 'anyone' or 'author'"),
        ("[[rule]]\npath = 'm'\nmoderators = ['role:admin']", "'moderators' needs"),
        ("[[rule]]\npath = 'm'\nauthor_field = 'user'", "'author_field' needs entries"),
        ("[[rule]]\npath = 'm'\nwrite = 'admins'", "'write' must be 'anyone', 'nobody'"),
        ("[[rule]]\npath = 'm'\nwrite = ['role:']", "'role:' needs a role name"),
        ("[[rule]]\npath = 'm'\nappend_only = 'yes'", "'append_only' must be true or false"),
        ("[[rule]]\npath = 'm'\nrooms = 'a*b'\ntype = 'map'", "prefix ending in *"),
        ("[[rule]]\npath = 'm'", "says nothing"),
        ("[[rules]]\npath = 'm'", "unknown table 'rules'"),
        ("[[rule]\npath = 'm'", "not valid TOML"),
        ("[[rule]]\npath = 'a'\ntype = 'map'\n[[rule]]\npath = 'b'\nuser_keys = 1", "rule 2 (b)"),
    ],
)
def test_a_bad_rule_is_named_in_one_line(text: str, says: str) -> None:
    with pytest.raises(RulesInvalid) as raised:
        parse_rules(text, "rules.toml")
    message = str(raised.value)
    assert says in message and message.startswith("rules.toml: ")
    assert "\n" not in message


def test_serve_exits_2_with_one_line_for_a_bad_rules_file(tmp_path: Path) -> None:
    bad = tmp_path / "rules.toml"
    bad.write_text("[[rule]]\npath = 'messages'\nentries = 'owner'\n")
    result = subprocess.run(
        [sys.executable, "-m", "server", "serve", "--port", "0", "--data", str(tmp_path / "d"),
         "--rules", str(bad)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    expected = "error: rules.toml: rule 1 (messages): 'entries' must be 'anyone' or 'author'"
    assert lines[-1] == expected + ", not 'owner'"
    missing = subprocess.run(
        [sys.executable, "-m", "server", "serve", "--port", "0", "--data", str(tmp_path / "d"),
         "--rules", str(tmp_path / "nope.toml")],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert missing.returncode == 2 and "No such file" in missing.stderr


def test_a_rule_this_version_cannot_enforce_stops_the_server() -> None:
    """A valid rule the server does not enforce yet is never silently ignored."""
    from server.app import ConfigError, create_app
    from server.config import Config

    text = "[[rule]]\npath = 'title'\ntype = 'text'\nappend_only = true\n"
    rules = parse_rules(text, "rules.toml")
    with pytest.raises(ConfigError, match=r"rule 1 \(title\): on a text root only 'write'"):
        create_app(Config(), rules=rules)
    keyed_array = (
        "[[rule]]\npath = 'log'\ntype = 'array'\n[[rule]]\npath = 'log.x'\nwrite = 'nobody'\n"
    )
    with pytest.raises(ConfigError, match=r"rule 2 \(log.x\): log is an array here"):
        create_app(Config(), rules=parse_rules(keyed_array, "rules.toml"))
    create_app(Config(), rules=load_rules(ROOT / "examples" / "chat-rules.toml"))
