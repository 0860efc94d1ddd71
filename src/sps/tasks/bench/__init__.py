"""The five real benchmarks: reading their hub schemas into the problem tables."""

from sps.tasks.bench.prepare import BENCHMARKS, prepare_benchmark

__all__ = ["BENCHMARKS", "prepare_benchmark"]
