"""The benchmark harness for htq: `python -m bench [--quick]` (see docs/benchmarks.md)."""
