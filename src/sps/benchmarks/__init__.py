"""Benchmarks, runnable as modules (`python -m sps.benchmarks.<name>`)."""
