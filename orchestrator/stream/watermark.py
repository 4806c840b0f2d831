"""Event time on the customers partitions: how far each input partition is released by ingest, and the watermark
the customer agent releases records and fires timers by, so that a person's records run in `(occurred_at,
event_id)` order whatever key and input partition they came through (as `simulate` runs them).

- The ingest side (`IngestProgress`) knows, per input partition it owns, how far (event time) its records are
  released (stream/intake.py: never past the input watermark, nor past a record still waiting) and, per customers
  partition, readable there: a record re-keyed through the customers topic is readable once committed (until then
  it may be in the producer's buffer, under exactly_once unreadable, so a mark about it could overtake it); one
  that took one hop (stream/ingest.py) is in its partition's holding at once. Every `ORCH_TIMER_INTERVAL` it sends
  each customers partition a `Mark`: "input partition p is released up to `until`". A mark lands behind the
  re-keyed records it speaks for.
- The customer side (`Watermarks`) keeps the newest mark of every input partition, per customers partition.
  The watermark is their minimum. It may go back: a partition that was quiet and receives a backfill of last
  month's log speaks for last month again, and the records of that backfill then run in their own time order.
  A record held on a customers partition is released once the watermark has passed its time *and* every input
  partition has sent a mark since it arrived (so the marks that release it account for its own partition).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Set
from dataclasses import dataclass
from itertools import islice

from orchestrator.stream.eos import OrchestratorApp
from orchestrator.stream.records import Mark


class IngestProgress:
    """Per owned input partition: how far it is released, and of that what each customers partition can see."""

    def __init__(self, app: OrchestratorApp, topic: str, sources: int) -> None:
        self.app = app
        self.topic = topic
        self.sources = sources
        # partition -> (offset a commit must pass, until, customers partitions the release sent records to)
        self._pending: dict[int, deque[tuple[int, int, frozenset[int]]]] = {}
        self._committed: dict[int, int] = {}  # partition -> released-until of the committed records

    def claimed(self, partition: int, offset: int, until: int, sent: Set[int] = frozenset()) -> None:
        """Every record of `partition` up to `until` (event time) is released: at once for the customers partitions
        it sent nothing to through the customers topic (`sent`), once its offset `offset` is committed for those
        it did (until then, under exactly_once, its records there are unreadable: a mark could overtake them)."""
        pending = self._pending.setdefault(partition, deque())
        if pending and pending[-1][0] == offset:
            sent = sent | pending.pop()[2]
        pending.append((offset, until, frozenset(sent)))

    def marks(self, destinations: int) -> list[tuple[int, Mark]]:
        """(customers partition, mark) to send now: per owned input partition that can speak for some time, one
        mark to each customers partition."""
        owned = sorted((tp for tp in self.app.assigned() if tp.topic == self.topic), key=lambda tp: tp.partition)
        for partition in set(self._pending) - {tp.partition for tp in owned}:
            del self._pending[partition]  # no longer ours: its next owner speaks for it
        marks = []
        for tp in owned:
            committed = self.app.committed_offset(tp)
            pending = self._pending.get(tp.partition, deque())
            while pending and pending[0][0] <= committed:
                self._committed[tp.partition] = pending.popleft()[1]
            # A mark rises once the records it speaks for are readable there: up to the first release not committed
            # that sent records there; it falls at once (a late record read and waiting: records released meanwhile
            # from other partitions must wait for it), so never past a later release's `until`.
            for destination in range(destinations):
                until, rest = self._committed.get(tp.partition), len(pending)
                for number, (_, released, sent) in enumerate(pending):
                    if destination in sent:
                        rest = number
                        break
                    until = released
                if until is not None:
                    until = min([until, *(released for _, released, _ in islice(pending, rest, None))])
                    marks.append((destination, Mark(tp.partition, self.sources, until, committed)))
        return marks


@dataclass(slots=True)
class _Newest:
    until: int
    offset: int  # where the mark was read on the customers partition
    committed: int  # the input partition's committed offset the mark speaks for


class Watermarks:
    """Per customers partition: the newest mark of each input partition (in memory: marks come every tick)."""

    def __init__(self) -> None:
        self._marks: dict[int, dict[int, _Newest]] = {}
        self._sources: dict[int, int] = {}
        self._owned: set[int] = set()  # the customers partitions owned since the last rebalance

    def mark(self, partition: int, mark: Mark, offset: int) -> None:
        marks = self._marks.setdefault(partition, {})
        if self._sources.get(partition) != mark.sources:  # the input has more partitions now: start again
            marks.clear()
            self._sources[partition] = mark.sources
        marks[mark.source] = _Newest(mark.until, offset, mark.committed)

    def rebalanced(self, owned: Set[int]) -> None:
        """After a rebalance: a customers partition that is ours again (given away and taken back) or no longer
        ours forgets its marks: they speak of a position the agent is no longer at (read again from its committed
        offset, with records travelling to it not read again yet). Until a mark of every input partition is read
        afresh, nothing runs on it. A partition kept through the rebalance keeps its marks."""
        for partition in set(self._marks) | set(self._sources):
            if partition not in owned or partition not in self._owned:
                self._marks.pop(partition, None)
                self._sources.pop(partition, None)
        self._owned = set(owned)

    def current(self, partition: int) -> tuple[int, int] | None:
        """(watermark, offset of the oldest mark it rests on), or None while an input partition has not spoken."""
        marks = self._marks.get(partition, {})
        if not marks or len(marks) < self._sources.get(partition, 0):
            return None
        return min(m.until for m in marks.values()), min(m.offset for m in marks.values())

    def coverage(self, partition: int) -> dict[int, int]:
        """Input partition -> the committed offset of its newest mark here: which input this partition has had."""
        return {source: m.committed for source, m in self._marks.get(partition, {}).items()}
