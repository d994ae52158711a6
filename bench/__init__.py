"""Benchmarks: ratios measured side by side in one run. Run each from the repository root: `python -m bench.scan`."""
