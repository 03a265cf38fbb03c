"""A `Hooks.check` example: what a rules file cannot say, in code.

    performer serve --auth-secret "$SECRET" --hooks examples.message_check:MessageCheck

A new chat message must be a map with a `text` of at most 500 characters; an update
that posts one that is not is undone whole by the server, and its sender is told why.
"""

from __future__ import annotations

# --8<-- [start:check]
import re

from server import Edit, Hooks, Verdict


class MessageCheck(Hooks):
    def check(self, edit: Edit) -> Verdict:
        for change in edit.changes:  # a new entry of messages, not inside one
            if change.kind == "insert" and re.fullmatch(r"messages\[\d+\]", change.path):
                text = change.value.get("text") if isinstance(change.value, dict) else None
                if not isinstance(text, str) or len(text) > 500:
                    return Verdict.refuse("a message has a text of at most 500 characters")
        return Verdict()


# --8<-- [end:check]
