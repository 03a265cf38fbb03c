"""Write mutation/baseline.toml from the results of `make mutate` (mutation/results/).

Every mutant a run did not detect gets one line with its reason, under its target:

- `equivalent: ...`  the mutant cannot change what anyone observes (a codec name's case,
  a default passed explicitly); accepted for good.
- `message: ...`     it changes only the wording of a log line or an error message, which
  the README promises nothing about; accepted.
- `accepted: ...`    a real change judged not worth a test, with the reason why.
- `gap: ...`         a real behaviour no test of the target's mapping holds yet; listed so
  the run fails only on new survivors, and to be turned into tests.
- `killed: ...`      a test added after the target's last run kills it (seen by applying the
  mutant by hand); the target's next run drops the entry.

A reason written by hand in the baseline is kept (edit the file to refine one); the others
are classified by the rules below, and ones no rule fits become `gap`. Above each entry, a
comment shows the mutant's change.

    python scripts/mutation_baseline.py   (also prints the score table of docs/reliability/index.md)
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "mutation" / "baseline.toml"
RESULTS = ROOT / "mutation" / "results"
TARGETS = ROOT / "mutation" / "targets.toml"

LOGGING = re.compile(r"\blog\.(debug|info|warning|error|exception|critical)\(")
HEADER = re.compile(r"[A-Z][A-Za-z]*(-[A-Z][A-Za-z]*)+|Accept")
STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
CODECS = {"utf-8", "ascii", "latin-1"}
RAISE = re.compile(r"raise \w+(Error|Exceeded|Rejected|NotFound|Denied)\w*\(")


UNREACHED = "gap: no test of this target's mapping reaches the function in-process"
UNGUARDED = "gap: not yet guarded by a test of this target's mapping"


def _pairs(diff: str) -> tuple[list[str], list[str]]:
    removed = [line[1:].strip() for line in diff.splitlines() if line.startswith("-")]
    added = [line[1:].strip() for line in diff.splitlines() if line.startswith("+")]
    return removed, added


def classify(diff: str, status: str) -> str:
    """One line saying why this undetected mutant is accepted, or that it is a gap."""
    removed, added = _pairs(diff)
    old, new = " ".join(removed), " ".join(added)
    if _only_case_of(old, new, CODECS):
        return "equivalent: codec names are case-insensitive"
    if _header_name_case(old, new):
        return "equivalent: HTTP header names compare case-insensitively"
    if re.sub(r"\.get\((.+?), None\)", r".get(\1, )", old) == new:
        return "equivalent: dict.get's default is None already"
    if LOGGING.search(old) and LOGGING.search(new):
        return "message: only what a log line says"
    if RAISE.search(old) and RAISE.search(new):
        return "message: only the error's wording; callers and the error table see its type"
    raising = any(word in old for word in ("raise ", "Error(", "log.", "reason"))
    if raising and STRINGS.sub('""', old) == STRINGS.sub('""', new):
        return "message: only the wording of an error or log line"
    return UNREACHED if status == "no tests" else UNGUARDED


def _only_case_of(old: str, new: str, names: set[str]) -> bool:
    """Only the case of one quoted name from `names` changed (`"utf-8"` -> `"UTF-8"`)."""
    before, after = STRINGS.findall(old), STRINGS.findall(new)
    changed = [(a, b) for a, b in zip(before, after, strict=False) if a != b]
    return (
        len(before) == len(after)
        and len(changed) == 1
        and changed[0][0].strip('"').lower() in names
        and changed[0][0].lower() == changed[0][1].lower()
        and STRINGS.sub('""', old) == STRINGS.sub('""', new)
    )


def _header_name_case(old: str, new: str) -> bool:
    """Only the case of a header name (`"Last-Event-ID"`, `"Accept"`) changed."""
    before, after = STRINGS.findall(old), STRINGS.findall(new)
    changed = [(a, b) for a, b in zip(before, after, strict=False) if a != b]
    return (
        len(before) == len(after)
        and len(changed) == 1
        and changed[0][0].lower() == changed[0][1].lower()
        and HEADER.fullmatch(changed[0][0].strip('"')) is not None
        and STRINGS.sub('""', old) == STRINGS.sub('""', new)
    )


def _one_line(diff: str) -> str:
    removed, added = _pairs(diff)
    text = f"- {' '.join(removed)}  + {' '.join(added)}"
    return text if len(text) <= 160 else text[:157] + "..."


def _changes_in(baseline: str) -> dict[tuple[str, str], str]:
    """(target, mutant) -> the change its reason was written for (the comment above it). A
    mutant's name is its function and a number: once the source changes, a name may stand
    for another change, and a reason kept by name alone would describe the wrong mutant."""
    changes: dict[tuple[str, str], str] = {}
    target, comment = "", None
    for line in baseline.splitlines():
        if line.startswith("[") and line.endswith("]"):
            target, comment = line[1:-1], None
        elif line.startswith("# - "):
            comment = line[2:]
        elif line.startswith('"') and " = " in line and comment is not None:
            changes[(target, json.loads(line.split(" = ", 1)[0]))] = comment
            comment = None
    return changes


def write_baseline() -> str:
    kept: dict[str, dict[str, str]] = (
        tomllib.loads(BASELINE.read_text()) if BASELINE.exists() else {}
    )
    kept_changes = _changes_in(BASELINE.read_text()) if BASELINE.exists() else {}
    targets = tomllib.loads(TARGETS.read_text())
    out = [
        "# Mutants `make mutate` did not detect, each with the reason it is accepted",
        "# (equivalent: / message: / accepted:) or listed as a known gap (gap:). Written by",
        "# scripts/mutation_baseline.py from mutation/results/; reasons already here are kept.",
        "",
    ]
    for name in targets:
        path = RESULTS / f"{name}.json"
        if not path.exists():
            out += [f"# [{name}]: not run yet", ""]
            continue
        result: dict[str, Any] = json.loads(path.read_text())
        out.append(f"[{name}]")
        out.append(
            f"# {result['module']}: {result['detected']}/{result.get('checked', result['mutants'])}"
            f" detected ({result['score']}%)"
        )
        for mutant, found in sorted(result["undetected"].items()):
            change = _one_line(found["diff"])
            reason = kept.get(name, {}).get(mutant, UNGUARDED)
            if kept_changes.get((name, mutant)) != change:
                reason = UNGUARDED  # written for another change: source moved, names shifted
            if reason in (UNREACHED, UNGUARDED):  # not written by hand: classify again
                reason = classify(found["diff"], found["status"])
            out.append(f"# {change}")
            out.append(f"{json.dumps(mutant, ensure_ascii=False)} = {json.dumps(reason)}")
        out.append("")
    text = "\n".join(out)
    tomllib.loads(text)  # what the run reads back must parse
    BASELINE.write_text(text)
    return text


def score_table() -> str:
    """The score table of docs/reliability/index.md: per target, what was detected and the rest."""
    columns = "target | module | detected / checked | accepted | known gaps | killed since"
    rows = [f"| {columns} | not checked | command |", "|---|---|---|---|---|---|---|---|"]
    baseline = tomllib.loads(BASELINE.read_text()) if BASELINE.exists() else {}
    for name in tomllib.loads(TARGETS.read_text()):
        path = RESULTS / f"{name}.json"
        if not path.exists():
            continue
        result = json.loads(path.read_text())
        reasons = list(baseline.get(name, {}).values())
        gaps = sum(reason.startswith("gap:") for reason in reasons)
        killed = sum(reason.startswith("killed:") for reason in reasons)
        checked = result.get("checked", result["mutants"])
        unchecked = result["mutants"] - checked
        rows.append(
            f"| {name} | `{result['module']}` | {result['detected']}/{checked} "
            f"({result['score']}%) | {len(reasons) - gaps - killed} | {gaps} | {killed} "
            f"| {unchecked} "
            f"| `make mutate ONLY={name}` |"
        )
    return "\n".join(rows)


if __name__ == "__main__":
    write_baseline()
    print(score_table())
