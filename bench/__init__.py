"""Benchmarks: `make bench` runs every suite listed in `bench.__main__`."""
