"""Process-wide tuning for the long-running shells (simulate, worker); never imported by the engine."""

from __future__ import annotations

import gc

# Customer state is many small, long-lived dicts and lists. With CPython's default thresholds
# (700, 10, 10) the cyclic collector rescans them thousands of times a second; these thresholds
# keep it working (cycles are still collected) at a fraction of the cost. Measured in bench/engine.py.
GC_THRESHOLDS = (50_000, 20, 100)


def tune_gc() -> None:
    gc.set_threshold(*GC_THRESHOLDS)
