"""Micro-benchmarks (not tests): `python -m bench.engine`."""
