"""Benchmarks: each module's `main(scale)` prints ratios against a baseline in the same run."""
