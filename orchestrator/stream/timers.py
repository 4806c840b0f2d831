"""The in-memory index of due times for the partitions this worker owns.

The durable copy is the `timers` table (changelog-backed, one entry per pending timer); this
heap is rebuilt from it whenever partitions are assigned, so a tick costs O(timers due), never a
scan of customers.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

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
