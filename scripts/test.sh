#!/usr/bin/env bash
# Install what the tests need (Python, Node, Chromium, Redis) and run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
bash scripts/install-system.sh
for dir in tests/interop client_js; do
  if [ -f "$dir/package.json" ]; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
done

echo "== lint and types"
.venv/bin/ruff format --check .
.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/lint-imports

echo "== docs site (mkdocs build --strict: broken links, missing pages or examples fail it)"
site_dir="$(mktemp -d)"
NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict --site-dir "$site_dir"  # not --quiet: it hides the warnings strict counts
rm -rf "$site_dir"

echo "== python tests"
set +e
# Two workers: most tests wait on servers, sockets and disks, so two share two cores well
# (the suite takes about half the time); each worker starts its own servers on free ports.
.venv/bin/python -m pytest --numprocesses=2 --durations=15 "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure here" >&2
  exit 1
fi
[ "$status" -eq 0 ] || exit "$status"

if [ -f client_js/package.json ]; then
  echo "== client_js tests"
  (cd client_js && npm test)
fi
