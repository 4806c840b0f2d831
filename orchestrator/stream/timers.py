"""The in-memory index of due times for the partitions this worker owns.

The durable copy is the `timers` table (changelog-backed, one entry per pending timer); this
heap is rebuilt from it whenever partitions are assigned, so a tick costs O(timers due), never a
scan of customers.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

import faust
from aiokafka.errors import KafkaError
from faust.types import TP

from orchestrator.engine import Timer


def timer_key(timer: Timer) -> str:
    return f"{timer.customer}\x1f{timer.token}"


class TimerIndex:
    def __init__(self) -> None:
        self._heap: list[tuple[int, str, int, Timer]] = []

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, timer: Timer, partition: int) -> None:
        heapq.heappush(self._heap, (timer.due, timer_key(timer), partition, timer))

    def rebuild(self, entries: Iterable[tuple[Timer, int]]) -> None:
        self._heap = [(t.due, timer_key(t), p, t) for t, p in entries]
        heapq.heapify(self._heap)

    def pop_due(self, now: int) -> list[tuple[Timer, int]]:
        """Every timer due at or before `now`, in due order, removed from the index."""
        due = []
        while self._heap and self._heap[0][0] <= now:
            _, _, partition, timer = heapq.heappop(self._heap)
            due.append((timer, partition))
        return due


class InputWatermark:
    """How far (wall-clock ms) the ingest agent has processed each input partition.

    The timer loop fires a timer only once the input partition of the same number is processed up to the
    timer's due time: an event that happened before the due time (still in the input after a restart, or
    under load) then runs before the timer, as `simulate` orders them. Producers that key events by
    customer put a customer's events and timers on partitions of the same number.
    """

    def __init__(self, app: faust.App, topic: str) -> None:
        self.app = app
        self.topic = topic
        self._done: dict[int, tuple[int, int]] = {}  # partition -> (next offset, broker timestamp ms)

    def processed(self, partition: int, offset: int, timestamp: float | None) -> None:
        self._done[partition] = (offset + 1, int(timestamp * 1000) if timestamp else 0)

    async def until(self, partition: int, now: int) -> int:
        """Up to when the partition is processed: `now` when the ingest agent is at its end (one ListOffsets
        request, read_committed under exactly_once), else the broker timestamp of the last event it processed."""
        tp = TP(self.topic, partition)
        thread = self.app.consumer._thread  # type: ignore[attr-defined]  # faust runs aiokafka's consumer there
        consumer = thread._ensure_consumer()
        if tp not in consumer.assignment():
            return now  # this worker does not read that input partition: nothing to wait for
        next_offset, timestamp = self._done.get(partition, (0, 0))
        next_offset = max(next_offset, self.app.consumer._committed_offset.get(tp) or 0)  # type: ignore[attr-defined]
        try:
            ends = await thread.call_thread(consumer.end_offsets, [tp])
        except KafkaError:
            return timestamp  # broker unreachable: wait, the next tick asks again
        return now if next_offset >= ends[tp] else timestamp
