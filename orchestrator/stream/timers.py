"""The in-memory index of due times for the partitions this worker owns.

The durable copy is the `timers` table (changelog-backed, one entry per pending timer); this
heap is rebuilt from it whenever partitions are assigned, so a tick costs O(timers due), never a
scan of customers.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable

from aiokafka.errors import KafkaError
from faust.types import TP

from orchestrator.engine import Timer
from orchestrator.stream.eos import OrchestratorApp


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
    """How far (wall-clock ms) each input partition is ingested *and committed*.

    The timer loop fires a timer only once the input partition of the same number is ingested up to the
    timer's due time: an event that happened before the due time (still in the input after a restart, or
    under load) then runs before the timer, as `simulate` orders them. Producers that key events by
    customer put a customer's events and timers on partitions of the same number.

    Only committed input counts: until its commit, an ingested event's re-keyed record may still be in the
    producer's buffer (and, under exactly_once, unreadable), so a fire record sent then could overtake it
    on the customer's partition. The committed offset comes after the records are appended (flushed, and
    their transaction committed), so a fire record sent later lands behind them. The cost is one commit
    interval of timer latency.
    """

    def __init__(self, app: OrchestratorApp, topic: str) -> None:
        self.app = app
        self.topic = topic
        self._processed: dict[int, deque[tuple[int, int]]] = {}  # partition -> (next offset, broker ts ms)
        self._committed_ts: dict[int, int] = {}  # partition -> broker ts of the last committed event

    def processed(self, partition: int, offset: int, timestamp: float | None) -> None:
        self._processed.setdefault(partition, deque()).append((offset + 1, int(timestamp * 1000) if timestamp else 0))

    def _committed(self, tp: TP) -> tuple[int, int]:
        """The committed offset and the broker timestamp of the last event before it."""
        committed = self.app.committed_offset(tp)
        processed = self._processed.get(tp.partition)
        while processed and processed[0][0] <= committed:
            self._committed_ts[tp.partition] = processed.popleft()[1]
        return committed, self._committed_ts.get(tp.partition, 0)

    async def until(self, partition: int, now: int) -> int:
        """Up to when the partition is ingested: `now` when its committed offset is at the end (one ListOffsets
        request, read_committed under exactly_once), else the broker timestamp of the last committed event."""
        tp = TP(self.topic, partition)
        if tp not in self.app.assigned():
            self._processed.pop(partition, None)
            return now  # this worker does not read that input partition: nothing to wait for
        committed, timestamp = self._committed(tp)
        try:
            ends = await self.app.end_offsets([tp])
        except KafkaError:
            return timestamp  # broker unreachable: wait, the next tick asks again
        return now if committed >= ends[tp] else timestamp
