"""Benchmarks of what applications build on: hooks, the change feed."""
