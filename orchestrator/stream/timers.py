"""The in-memory index of due times, per partition this worker owns.

The durable copy is the `timers` table (changelog-backed, one entry per pending timer); this index is
rebuilt from it whenever partitions are assigned, so firing costs O(timers due), never a scan of customers.
The customer agent fires a partition's timers when its watermark passes their due time (stream/watermark.py).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

from orchestrator.engine import Timer


def timer_key(timer: Timer) -> str:
    return f"{timer.customer}\x1f{timer.token}"


class TimerIndex:
    def __init__(self) -> None:
        self._heaps: dict[int, list[tuple[int, str, Timer]]] = {}

    def __len__(self) -> int:
        return sum(len(heap) for heap in self._heaps.values())

    def add(self, timer: Timer, partition: int) -> None:
        heapq.heappush(self._heaps.setdefault(partition, []), (timer.due, timer_key(timer), timer))

    def rebuild(self, entries: Iterable[tuple[Timer, int]]) -> None:
        self._heaps = {}
        for timer, partition in entries:
            self._heaps.setdefault(partition, []).append((timer.due, timer_key(timer), timer))
        for heap in self._heaps.values():
            heapq.heapify(heap)

    def next_due(self, partition: int) -> int | None:
        """The due time of the first timer indexed on `partition` (it may have gone stale since)."""
        heap = self._heaps.get(partition)
        return heap[0][0] if heap else None

    def pop_due(self, partition: int, now: int, limit: int | None = None) -> list[Timer]:
        """The timers of `partition` due at or before `now` (at most `limit`), in due order, removed from the
        index."""
        heap = self._heaps.get(partition, [])
        due: list[Timer] = []
        while heap and heap[0][0] <= now and (limit is None or len(due) < limit):
            due.append(heapq.heappop(heap)[2])
        return due
