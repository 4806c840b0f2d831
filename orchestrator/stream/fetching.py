"""faust's fetcher and table recovery, fixed (the numbered bugs are those of stream/eos.py's docstring).

- `Run`/`FixedConsumerThread.runs`: what the fetcher returned per partition since its last seek, so that the
  agents never pass a record it returned (9.), and recovery's end counts only once those records are applied (7.);
- the fetch wait: faust hard-codes 1.5 s; under read_committed a record becomes readable at its transaction's
  commit, and a fetch already waiting may not return before its wait ends;
- highwaters asked of the broker (6.); recovery's idle queue polled instead of waited on for 5 s (7.).
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from functools import cached_property
from types import SimpleNamespace
from typing import Any, cast

import faust.tables.recovery
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.types import TP

FETCH_MAX_WAIT_MS = 100
RUN_LIMIT = 100_000  # record offsets remembered per partition
RECOVERY_POLL_SECONDS = 0.5  # faust waits 5 s on an idle recovery queue, twice, before it checks for the end


@dataclass
class Run:
    """Fetch positions `start`..`end` of one partition, read without a jump, and the offsets of the records the
    fetcher returned in it; the offsets in between are transaction markers or aborted records."""

    start: int
    end: int
    offsets: list[int]

    def records_in(self, first: int, stop: int) -> bool | None:
        """Whether a record lies in `first`..`stop` (excluded); None if this run did not read all of it."""
        if first < self.start or stop > self.end:
            return None
        i = bisect_left(self.offsets, first)
        return i < len(self.offsets) and self.offsets[i] < stop


class FixedConsumerThread(AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read by the fetcher it creates when started
        return consumer

    @cached_property
    def runs(self) -> dict[TP, Run]:
        """What the fetcher returned per partition since its last seek. Written on this thread only (fetches and
        `seek_wait` run on its loop; a seek from the app's thread shows as a jump and starts a new run)."""
        return {}

    async def _seek_wait(self, consumer: Any, partitions: Mapping[TP, int]) -> None:
        for tp in partitions:
            self.runs.pop(tp, None)
        await super()._seek_wait(consumer, partitions)

    async def _fetch_records(self, consumer: Any, active_partitions: Any, timeout: float | None = None,
                             max_records: int | None = None) -> Any:  # fmt: skip
        subscription = consumer._subscription.subscription
        assignment = subscription.assignment if subscription is not None else None
        states = {tp: assignment.state_value(tp) for tp in assignment.tps} if assignment is not None else {}
        before = {tp: state.position for tp, state in states.items() if state is not None and state.has_valid_position}
        runs = dict(self.runs)
        records = await super()._fetch_records(consumer, active_partitions, timeout=timeout, max_records=max_records)
        for tp, first in before.items():
            state = states[tp]
            if (
                state.paused
                or not state.has_valid_position
                or assignment is not consumer._subscription.subscription.assignment
            ):
                continue
            last = state.position
            offsets = [record.offset for record in records.get(tp, ())]
            if offsets and offsets[0] < first:
                first = offsets[0]  # sought back meanwhile: what lies before the first record is unknown
            run = self.runs.get(tp)
            if run is not runs.get(tp) or last < first or (offsets and offsets[-1] >= last):
                self.runs[tp] = Run(last, last, [])  # sought meanwhile: start again where it stands
                continue
            if run is None or run.end != first:
                run = self.runs[tp] = Run(first, first, [])
            elif len(run.offsets) > RUN_LIMIT:  # forget the older half
                kept = run.offsets[RUN_LIMIT // 2 :]
                run = self.runs[tp] = Run(kept[0], run.end, kept)
            run.offsets.extend(offsets)
            run.end = last  # after the offsets: a reader that sees this end sees every record before it
        return records

    async def _highwaters(self, partitions: list[TP]) -> Mapping[TP, int]:
        # faust answers the last stable offset seen by a fetch, None (then -1) before the first one: table
        # recovery after a rebalance then finds its RocksDB offset "higher than the highwater" and crashes.
        # Ask the broker (ListOffsets answers the last stable offset under read_committed).
        return cast(Mapping[TP, int], await self._ensure_consumer().end_offsets(partitions))


def poll_recovery_queue() -> None:
    """7. above: faust's recovery waits 5 s on its idle queue before it looks for its end; have it poll instead.
    Its only `asyncio.wait_for` is that wait."""

    async def wait_for(awaitable: Awaitable[Any], timeout: float) -> Any:
        return await asyncio.wait_for(awaitable, min(timeout, RECOVERY_POLL_SECONDS))

    setattr(faust.tables.recovery, "asyncio", SimpleNamespace(**{**vars(asyncio), "wait_for": wait_for}))  # noqa: B010
