"""Benchmark scripts (not tests): each writes its figures into BENCHMARKS.md."""
