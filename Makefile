# The two commands a newcomer needs:
#   make serve   set up and run the server with the chat demo on embedded LMDB (./data)
#   make test    install everything the tests need, then run every test
# and `make docs` serves the documentation site (docs/, mkdocs.yml) at http://127.0.0.1:8000.
PY ?= .venv/bin/python

.PHONY: setup serve test check fix bench mutate docs
setup:
	bash scripts/setup.sh

serve: setup
	.venv/bin/performer serve --data ./data --rules examples/chat-rules.toml

test:
	bash scripts/test.sh

check:
	.venv/bin/ruff format --check .
	.venv/bin/ruff check .
	.venv/bin/mypy
	.venv/bin/lint-imports

fix:
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

docs:
	bash scripts/setup.sh --dev
	NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs serve

bench: setup
	.venv/bin/performer bench

# Mutation testing of the modules that carry promises (slow: not part of `make test`).
# `make mutate ONLY="journal restore"` runs some targets of mutation/targets.toml;
# `make mutate ONLY=feeds RECHECK=tests/...` checks new tests against its last run.
mutate:
	.venv/bin/pip install -q -e ".[dev,mutate]"
	nice -n 19 $(PY) scripts/mutate.py $(ONLY) $(if $(RECHECK),--recheck $(RECHECK))
