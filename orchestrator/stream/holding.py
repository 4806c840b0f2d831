"""Records held on a customers partition until the watermark (stream/watermark.py) has passed their time.

Each held record is one entry of the changelog-backed `held` table, keyed by (partition, offset): holding and
releasing it are each one write in the transaction of the record (or mark) that caused it, so a crash loses or
repeats nothing. An in-memory heap per partition orders them by (event time, tie, offset), the tie being the event
id (of the merging event, for a merge's records): the order `simulate` runs them in, whatever order they arrived
in. It is rebuilt from the table when partitions are assigned.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, MutableMapping

import orjson

PREFIX = b"held\x1f"


def _key(partition: int, offset: int) -> bytes:
    return PREFIX + b"%d\x1f%d" % (partition, offset)


class Holding:
    def __init__(self, table: MutableMapping[bytes, bytes]) -> None:
        self.table = table
        self._heaps: dict[int, list[tuple[int, str, int]]] = {}  # partition -> (event time, tie, offset)

    def __len__(self) -> int:
        return sum(len(heap) for heap in self._heaps.values())

    def hold(self, partition: int, offset: int, ts: int, tie: str, raw: bytes) -> None:
        key = _key(partition, offset)
        if key in self.table:
            return  # read twice (at_least_once after a crash): held once
        self.table[key] = orjson.dumps([ts, raw.decode(), tie])
        heapq.heappush(self._heaps.setdefault(partition, []), (ts, tie, offset))

    def release(self, partition: int, until: int, before_offset: int) -> list[tuple[int, bytes]]:
        """(offset, record) of every record held with a time at or before `until`, in (time, tie, offset) order,
        stopping at the first one that arrived at or after `before_offset` (no full round of marks since)."""
        heap = self._heaps.get(partition, [])
        released = []
        while heap and heap[0][0] <= until and heap[0][2] < before_offset:
            _, _, offset = heapq.heappop(heap)
            value = self.table.pop(_key(partition, offset), None)
            if value is not None:
                released.append((offset, orjson.loads(value)[1].encode()))
        return released

    def next_time(self, partition: int) -> int | None:
        """The event time of the first record still held on `partition`."""
        heap = self._heaps.get(partition)
        return heap[0][0] if heap else None

    def rebuild(self, owned: Iterable[int]) -> int:
        """The heaps of the `owned` partitions, from the table; the number of records held there."""
        keep = set(owned)
        self._heaps = {partition: [] for partition in keep}
        for key, value in self.table.items():
            if not key.startswith(PREFIX):
                continue
            partition, offset = (int(part) for part in key[len(PREFIX):].split(b"\x1f"))
            if partition in keep:
                ts, _, *tie = orjson.loads(value)
                self._heaps[partition].append((ts, tie[0] if tie else "", offset))
        for heap in self._heaps.values():
            heapq.heapify(heap)
        return len(self)
