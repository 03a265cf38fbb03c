"""Worked examples the README and docs/ show, runnable as they are (tests/docs runs each)."""
