"""Input records wait in memory until every input partition is ingested past their time; then who they belong to
is decided as of that time (engine/history.py), as `simulate` decides it.

- Reading a record writes its identity fact to the shared history at once (serving/history.py); the record waits
  here, in offset order per input partition.
- Every tick each worker claims, per input partition it owns, how far it has read: the newest event time read
  minus `ORCH_MAX_LATENESS`; or, when the partition is read to its end (every record on the broker read: a
  partition with records it has not read yet is never idle), the wall clock minus the same bound. The input
  watermark is the least claim of all input partitions, whichever worker owns them (exchanged through Redis).
- A record is released once the watermark has passed its time and every claim it rests on was made after the
  record was read (so its own partition's claim accounts for it). Released records of a partition go out in
  offset order; its offsets are committed up to the oldest record still waiting, so nothing is written to Kafka
  for the wait and a restart reads the waiting records again (writing the same facts again changes nothing).

An event read after the watermark passed its time (late: beyond the lateness bound of its partition, or sent to a
partition that had been idle, as a replay of history to a running worker is) cannot wait for the watermark. It waits
instead until every input partition has been read up to the end offset it had just after the event was read
(positions are exchanged with the claims), so every record produced before it, on any partition, has its facts in
the history; then it is resolved as of its time. While it waits, its partition's marks stay below its time, so its
customer still takes it in order with the others. The customer agent audits it `late` only if its customer has
already had a later event (docs/streaming.md).

An event dated more than `AHEAD_MS` after the wall clock when read cannot wait for every partition to reach its time
(it would hold its partition's later records and commits for as long): it is released at once, resolved against the
facts there are, and waits for its time on its customer's partition. It does not move its partition's claim.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from faust.types import TP

from orchestrator.contract.events import Event
from orchestrator.timefmt import NEVER

AHEAD_MS = 3600 * 1000  # an event dated further ahead of the clock than this is resolved when read


@dataclass(slots=True)
class Read:
    """One input record read and waiting: the event (None: it goes to the DLQ for `reason`) and its identifiers."""

    message: Any
    at: int  # wall clock when read (ms)
    event: Event | None
    identifiers: list[str]
    reason: str = ""
    late: bool = False  # the watermark had passed its time when it was read
    needs: dict[int, int] | None = None  # late: the end offsets every input partition must be read to


class Intake:
    def __init__(self, lateness_ms: int) -> None:
        self.lateness_ms = lateness_ms
        self.queues: dict[TP, deque[Read]] = {}
        self.newest: dict[TP, int] = {}  # newest event time read per partition (its facts are written)
        self.position: dict[TP, int] = {}  # the offset after the last record read
        self.watermark: tuple[int, int] | None = None  # (input watermark, when its oldest claim was made)
        self.positions: dict[int, int] = {}  # input partition -> the offset its owner has read (and written) up to
        self.times: dict[TP, list[tuple[int, int]]] = {}  # per partition, a heap of (event time, offset) read
        self.unstamped: list[Read] = []  # late records that do not know yet what they wait for

    def __len__(self) -> int:
        return sum(len(queue) for queue in self.queues.values())

    def clear(self) -> None:
        """After a rebalance every stream partition is read again from its committed offset: forget what waits."""
        self.queues.clear()
        self.newest.clear()
        self.position.clear()
        self.times.clear()
        self.unstamped.clear()

    def read(self, tp: TP, reads: list[Read]) -> None:
        """Records whose facts are written, in offset order."""
        times, newest = self.times.setdefault(tp, []), self.newest.get(tp, NEVER)
        for read in reads:
            if read.event is not None:
                heapq.heappush(times, (read.event.ts, read.message.offset))
                if read.event.ts <= read.at + AHEAD_MS:  # a far-future event says nothing of the others' times
                    newest = max(newest, read.event.ts)
                read.late = self.watermark is not None and read.event.ts <= self.watermark[0]
                if read.late:
                    self.unstamped.append(read)
        self.queues.setdefault(tp, deque()).extend(reads)
        if newest > NEVER:
            self.newest[tp] = newest
        if reads:
            self.position[tp] = reads[-1].message.offset + 1

    def claims(
        self, owned: list[TP], ends: Mapping[TP, int], now: int, committed: Callable[[TP], int]
    ) -> dict[int, tuple[int, int]]:
        """This worker's claim for each input partition it owns (see above), and how far it has read it."""
        claims = {}
        for tp in owned:
            newest, position = self.newest.get(tp, NEVER), self.position.get(tp, committed(tp))
            if position >= ends[tp]:
                newest = max(newest, now)  # read to the end: its next records are new
            claims[tp.partition] = (newest - self.lateness_ms if newest > NEVER else NEVER, position)
        return claims

    def stamp(self, ends: Mapping[int, int], asked: int) -> None:
        """Late records read before `asked` (when `ends`, every input partition's end offset, was asked for) wait
        until every partition is read to there."""
        waiting = []
        for read in self.unstamped:
            if read.at < asked:
                read.needs = dict(ends)
            else:
                waiting.append(read)
        self.unstamped = waiting

    def ready(self, tp: TP) -> list[Read]:
        """The records `tp` may release now, taken off its queue: the longest prefix the watermark has passed."""
        queue, released = self.queues.get(tp), []
        while queue and self._passed(queue[0]):
            released.append(queue.popleft())
        return released

    def _passed(self, read: Read) -> bool:
        if read.event is None or read.event.ts > read.at + AHEAD_MS:
            return True  # a dead letter goes in its place in the partition's order; so does a far-future event
        if read.late:
            needs = read.needs
            return needs is not None and all(self.positions.get(p, -1) >= end for p, end in needs.items())
        if self.watermark is None:
            return False
        watermark, since = self.watermark
        return read.event.ts <= watermark and read.at < since

    def next_offset(self, tp: TP, committed: int) -> int:
        """The offset of the oldest record still waiting (or after the last read): where a commit stops."""
        queue = self.queues.get(tp)
        return queue[0].message.offset if queue else self.position.get(tp, committed)

    def released_until(self, tp: TP) -> int | None:
        """What `tp` may tell the customers partitions: every record of it up to this time is released (or late)."""
        if self.watermark is None:
            return None
        queue, times = self.queues.get(tp), self.times.get(tp, [])
        front = queue[0].message.offset if queue else None
        while times and (front is None or times[0][1] < front):
            heapq.heappop(times)  # released
        return min(self.watermark[0], times[0][0] - 1) if times else self.watermark[0]
