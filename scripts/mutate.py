"""`make mutate`: mutation testing of the modules that carry the README's promises.

Each target in mutation/targets.toml is mutated by mutmut in a scratch copy of the tree
(.mutate/NAME, so the working tree is never edited), with only that target's test files.
The outcome goes to mutation/results/NAME.json (counts, score over the mutants checked,
each surviving mutant's diff); survivors that mutation/baseline.toml does not list make
the run fail. `--reuse` only collects what a run left in .mutate/ (also one stopped early:
its unchecked mutants are counted apart).

    python scripts/mutate.py [NAME ...] [--jobs N] [--reuse]
    python scripts/mutate.py NAME --recheck TEST [TEST ...] [-k EXPR]

`--recheck` runs tests written since a target's run against each mutant that run did not
detect, with mutmut's `MUTANT_UNDER_TEST` switching the mutant on in the run's scratch
copy (one pytest process; a mutant that hangs is stopped after RECHECK_SECONDS): what the
baseline's `killed:` entries rest on, without a whole new run.

A target's `module` may be a package directory (every file in it is mutated). A target's
`max_examples` caps every hypothesis test of its mapping for the run (explicit @example
cases still run), so property tests cost seconds per mutant, not minutes.

mutmut learns which tests reach a function by running them in-process once; code that
only runs inside a server subprocess started by a test is invisible to it, so its
mutants count as "no tests" even when a subprocess test would kill them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGETS = ROOT / "mutation" / "targets.toml"
BASELINE = ROOT / "mutation" / "baseline.toml"
RESULTS = ROOT / "mutation" / "results"
SCRATCH = ROOT / ".mutate"
PACKAGES = ["engine", "server", "harness", "benchmarks", "examples"]
DETECTED = {"killed", "timeout", "caught by type check", "segfault"}
NOT_CHECKED = "not checked"
MUTMUT = [sys.executable, "-m", "mutmut"]
MAX_EXAMPLES_VARIABLE = "MUTATION_MAX_EXAMPLES"  # read by tests/conftest.py
RECHECK_SECONDS = 60
NODE_PACKAGES = ["tests/interop/node_modules"]  # installed by `make test`, not tracked


def tracked_files() -> list[str]:
    """Tracked and new (not ignored) files: the tree as it is now, uncommitted tests too."""
    out = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return [name for name in out.stdout.split("\0") if name and (ROOT / name).is_file()]


def prepare(name: str, module: str, tests: list[str]) -> Path:
    """A fresh copy of the tree whose pyproject.toml tells mutmut what to mutate and run."""
    scratch = SCRATCH / name
    shutil.rmtree(scratch, ignore_errors=True)
    for relative in tracked_files():
        target = scratch / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / relative, target)
    for packages in NODE_PACKAGES:  # the Node replicas some tests start resolve them here
        if (ROOT / packages).is_dir():
            (scratch / packages).symlink_to(ROOT / packages, target_is_directory=True)
    config = (
        "\n[tool.mutmut]\n"
        f"source_paths = [{json.dumps(module)}]\n"
        f"also_copy = {json.dumps(PACKAGES)}\n"
        f"pytest_add_cli_args_test_selection = {json.dumps(tests)}\n"
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q"]\n'
    )
    with open(scratch / "pyproject.toml", "a", encoding="utf-8") as pyproject:
        pyproject.write(config)
    return scratch


def outcomes(scratch: Path, module: str) -> dict[str, tuple[str, str]]:
    """Every mutant's (status, diff), read from mutmut's files in one process."""
    out = subprocess.run([sys.executable, __file__, "--collect", module], cwd=scratch,
                         check=True, capture_output=True, text=True)  # fmt: skip
    found: dict[str, tuple[str, str]] = json.loads(out.stdout)
    return found


def _changed(line: str) -> bool:
    return line.startswith(("+", "-")) and not line.startswith(("+++", "---"))


def source_files(module: str) -> list[Path]:
    """The files a target mutates: the module itself, or every .py file of a package."""
    path = Path(module)
    return sorted(path.rglob("*.py")) if path.is_dir() else [path]


def collect(module: str) -> None:
    """Print {mutant: [status, diff]} for `module`; run in a scratch copy after mutmut."""
    from mutmut.__main__ import SourceFileMutationData, status_by_exit_code
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    found = {}
    for path in source_files(module):
        data = SourceFileMutationData(path=path)
        data.load()
        for mutant, code in data.exit_code_by_key.items():
            status = status_by_exit_code[code]
            diff = "" if status in DETECTED else get_diff_for_mutant(mutant, path=data.path)
            lines = [line for line in diff.splitlines() if _changed(line)]
            found[mutant] = (status, "\n".join(lines))
    print(json.dumps(found))


def run_target(
    name: str,
    module: str,
    tests: list[str],
    jobs: int,
    reuse: bool = False,
    max_examples: int | None = None,
) -> dict[str, object]:
    """Mutate and test one target (with `reuse`, only read the outcome of a finished run
    left in its scratch copy). mutmut's progress goes to .mutate/NAME/mutmut.log."""
    scratch = SCRATCH / name if reuse else prepare(name, module, tests)
    if reuse:  # the tests that run used, whatever the mapping says now
        setup = tomllib.loads((scratch / "pyproject.toml").read_text())["tool"]["mutmut"]
        tests = setup["pytest_add_cli_args_test_selection"]
    exit_code = 0
    for _attempt in range(0 if reuse else 2):
        # mutmut stops when a test fails without any mutant (a timing test on a loaded
        # machine); a second run resumes where the first stopped
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        if max_examples is not None:
            env[MAX_EXAMPLES_VARIABLE] = str(max_examples)
        command = [*MUTMUT, "run", "--max-children", str(jobs)]
        with open(scratch / "mutmut.log", "a", encoding="utf-8") as log:
            run = subprocess.run(command, cwd=scratch, env=env, stdout=log, stderr=log, check=False)
        exit_code = run.returncode
        if exit_code == 0:
            break
    found = outcomes(scratch, module)
    status = {mutant: value for mutant, (value, _) in found.items()}
    counts: dict[str, int] = {}
    for value in status.values():
        counts[value] = counts.get(value, 0) + 1
    detected = sum(n for value, n in counts.items() if value in DETECTED)
    checked = len(status) - counts.get(NOT_CHECKED, 0)  # a run stopped early leaves some
    undetected = {m: s for m, s in status.items() if s not in DETECTED and s != NOT_CHECKED}
    result: dict[str, object] = {
        "module": module,
        "tests": tests,
        "mutmut_exit": exit_code,
        "mutants": len(status),
        "checked": checked,
        "detected": detected,
        "score": round(100 * detected / checked, 1) if checked else None,
        "counts": counts,
        "undetected": {m: {"status": s, "diff": found[m][1]} for m, s in undetected.items()},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    return result


def unaccepted(name: str, result: dict[str, object]) -> list[str]:
    """Undetected mutants that the baseline does not give a reason for."""
    accepted = tomllib.loads(BASELINE.read_text()).get(name, {}) if BASELINE.exists() else {}
    undetected = result["undetected"]
    assert isinstance(undetected, dict)
    return sorted(m for m in undetected if m not in accepted)


class _Hung(Exception):
    """A mutant made a test run past RECHECK_SECONDS (an endless loop): killed."""


def _alarm(_signum: int, _frame: object) -> None:
    raise _Hung(f"still running after {RECHECK_SECONDS} s")


def recheck_in_scratch(names: list[str], pytest_args: list[str]) -> None:
    """Run in a scratch copy's mutants/ directory: print 'killed|survived NAME' per mutant."""
    import contextlib
    import io
    import signal

    import pytest

    signal.signal(signal.SIGALRM, _alarm)
    args = [*pytest_args, "-x", "-q", "-p", "no:cacheprovider", "-p", "no:logging"]
    for name in ["", *names]:  # first without a mutant: the tests must pass as they are
        os.environ["MUTANT_UNDER_TEST"] = name
        signal.alarm(RECHECK_SECONDS)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                passed = pytest.main(args) == 0
        except _Hung:
            passed = False
        finally:
            signal.alarm(0)
        if not name and not passed:
            sys.exit("the tests fail without any mutant: " + " ".join(pytest_args))
        if name:
            print(f"{'survived' if passed else 'killed'} {name}", flush=True)


def recheck(name: str, tests: list[str], select: str | None) -> None:
    """Copy `tests` into NAME's scratch copy and check its run's undetected mutants."""
    mutants = SCRATCH / name / "mutants"
    result = json.loads((RESULTS / f"{name}.json").read_text())
    if not mutants.is_dir():
        sys.exit(f"no run of {name} in {mutants.parent}: make mutate ONLY={name} first")
    for test in {test.split("::")[0] for test in tests}:
        shutil.copy2(ROOT / test, mutants / test)
    args = [*tests, *(["-k", select] if select else [])]
    subprocess.run(
        [sys.executable, __file__, "--recheck-in", json.dumps(sorted(result["undetected"])), *args],
        cwd=mutants, check=True, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )  # fmt: skip


def main() -> int:
    if sys.argv[1:2] == ["--collect"]:
        collect(sys.argv[2])
        return 0
    if sys.argv[1:2] == ["--recheck-in"]:
        recheck_in_scratch(json.loads(sys.argv[2]), sys.argv[3:])
        return 0
    targets = tomllib.loads(TARGETS.read_text())
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", choices=[[], *targets], metavar="NAME",
                        help=f"targets to run (default: all of {', '.join(targets)})")  # fmt: skip
    parser.add_argument("--jobs", type=int, default=2, help="mutants tested at once")
    parser.add_argument("--reuse", action="store_true",
                        help="only collect the outcome of runs already in .mutate/")  # fmt: skip
    parser.add_argument("--recheck", nargs="+", metavar="TEST",
                        help="check NAME's undetected mutants against TESTs")  # fmt: skip
    parser.add_argument("-k", dest="select", help="with --recheck: pytest's -k expression")
    args = parser.parse_args()
    if args.recheck:
        if len(args.names) != 1:
            parser.error("--recheck takes one NAME")
        recheck(args.names[0], args.recheck, args.select)
        return 0
    failed = False
    for name in args.names or list(targets):
        target = targets[name]
        result = run_target(
            name, target["module"], target["tests"], args.jobs, args.reuse,
            target.get("max_examples"),
        )  # fmt: skip
        new = unaccepted(name, result)
        score = f"{result['detected']}/{result['checked']} detected ({result['score']}%)"
        print(f"{name}: {score}, {len(new)} survivors not in the baseline", flush=True)
        for mutant in new:
            print(f"  {mutant}", flush=True)
        failed = failed or bool(new)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
