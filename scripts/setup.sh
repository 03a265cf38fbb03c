#!/usr/bin/env bash
# Create .venv and install the package (and, with --dev, everything the tests need).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
if [ "${1:-}" = "--dev" ]; then
  .venv/bin/pip install -q -e ".[dev]"
else
  .venv/bin/pip install -q -e ".[fast]"
fi
