"""Hooks the check tests start real servers with (`--hooks tests.rules.check_hooks:X`):
the README's example, plus a text that makes the hook raise or overrun its budget, and
deletes only of what the deleting user wrote (by `authors`)."""

from __future__ import annotations

import time

from examples.message_check import MessageCheck
from server import Edit, Hooks, Verdict


class Faulty(MessageCheck):
    def check(self, edit: Edit) -> Verdict:
        for change in edit.changes:
            text = change.value.get("text") if isinstance(change.value, dict) else None
            if text == "raise":
                raise RuntimeError("the check hook broke")
            if text == "slow":
                time.sleep(0.3)
            if change.kind == "delete" and set(change.authors) - {edit.user}:
                return Verdict.refuse(
                    f"{edit.user} deletes only what they wrote, not {', '.join(change.authors)}'s"
                )
        return super().check(edit)


class NoForbiddenValues(Hooks):
    """Refuses any value "forbidden" (the Hocuspocus provider test)."""

    def check(self, edit: Edit) -> Verdict:
        if any(change.value == "forbidden" for change in edit.changes):
            return Verdict.refuse("that value is forbidden")
        return Verdict()
