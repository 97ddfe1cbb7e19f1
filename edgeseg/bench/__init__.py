"""Benchmarks behind `edgeseg bench NAME`; each writes its own section of docs/BENCHMARKS.md."""
