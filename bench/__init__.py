"""Benchmark scripts (run as modules, e.g. `python -m bench.export_bench`)."""
