"""Worked examples from the README, runnable as they are (and tested)."""
