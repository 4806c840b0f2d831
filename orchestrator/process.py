"""Process-wide tuning for the long-running shells (simulate, worker); never imported by the engine."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

# Customer state is many small, long-lived dicts and lists. With CPython's default thresholds
# (700, 10, 10) the cyclic collector rescans them thousands of times a second; these thresholds
# keep it working (cycles are still collected) at a fraction of the cost. Measured in bench/engine.py.
GC_THRESHOLDS = (50_000, 20, 100)


def tune_gc() -> None:
    gc.set_threshold(*GC_THRESHOLDS)


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """For a batch run that builds its data once and frees it at the end (`simulate`): the event log and the
    customer states hold no reference cycles (a replay leaves no cyclic garbage: checked on the bench log), yet
    even with GC_THRESHOLDS the collector rescans them, a tenth of the run. Reference counting still frees
    everything as before."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()  # freeze then unfreeze: what the run made moves to the oldest generation without a scan, else
        gc.unfreeze()  # the first collection after the pause would scan it all as young objects
        if was_enabled:
            gc.enable()
