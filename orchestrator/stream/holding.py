"""Records held on a customers partition until the watermark (stream/watermark.py) has passed their time.

Each held record is one entry of the changelog-backed `held` table: holding and releasing it are each one write in
the transaction of the record (or mark) that caused it, so a crash loses or repeats nothing. A record comes either
from the customers topic (key: its offset there) or, having taken one hop, straight from ingest of the input
partition of the same number (key: `i` and its input offset; stream/ingest.py). An in-memory heap per partition
orders them by (event time, tie, arrival, offset), the tie being the event id (of the merging event, for a merge's
records): the order `simulate` runs them in, whatever order they arrived in. It is rebuilt from the table when
partitions are assigned.

The arrival orders a record among the marks: a record read at offset `o` of the customers topic arrives at `2o+1`,
one handed over while the customer agent had read up to offset `n` (the marks it reads from `n` on come after it)
at `2n-1`. A record is released only once every input partition has sent a mark read after its arrival (`release`).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass

import orjson

PREFIX = b"held\x1f"
LOCAL = b"i"  # the key of a record handed over by ingest: `i<input offset>`


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a held record was read: the customers topic at `offset`, or (local) the input topic at `offset`."""

    local: bool
    offset: int

    def key(self, partition: int) -> bytes:
        """Its entry's key in the `held` table."""
        return PREFIX + b"%d\x1f%s%d" % (partition, LOCAL if self.local else b"", self.offset)


# In the heap: (event time, tie, arrival, offset, local). Offsets break a tie of the rest numerically, in the order
# they were read: two copies of one event id at one time run in the order `simulate` reads them.
Entry = tuple[int, str, int, int, bool]


class Holding:
    def __init__(self, table: MutableMapping[bytes, bytes]) -> None:
        self.table = table
        self._heaps: dict[int, list[Entry]] = {}
        self.read_to: dict[int, int] = {}  # partition -> the offset after the last customers record taken

    def __len__(self) -> int:
        return sum(len(heap) for heap in self._heaps.values())

    def hold(self, partition: int, offset: int, ts: int, tie: str, raw: bytes) -> None:
        """A record read at `offset` of the customers topic."""
        key = Origin(False, offset).key(partition)
        if key in self.table:
            return  # read twice (at_least_once after a crash): held once
        self.table[key] = orjson.dumps([ts, raw.decode(), tie])
        heapq.heappush(self._heaps.setdefault(partition, []), (ts, tie, 2 * offset + 1, offset, False))

    def taken(self, partition: int, offset: int) -> None:
        """The customer agent took the record at `offset` of the customers topic."""
        self.read_to[partition] = offset + 1

    def local(self, partition: int, input_offset: int, ts: int, tie: str, raw: bytes, read_to: int) -> tuple[
        bytes, bytes, Entry
    ]:  # fmt: skip
        """A record ingest hands over without the customers topic: its table key and value (ingest writes them in
        its own transaction) and its heap entry, to `push` once that write is handed to the producer."""
        arrival = 2 * read_to - 1
        value = orjson.dumps([ts, raw.decode(), tie, arrival])
        return Origin(True, input_offset).key(partition), value, (ts, tie, arrival, input_offset, True)

    def push(self, partition: int, entry: Entry) -> None:
        heapq.heappush(self._heaps.setdefault(partition, []), entry)

    def arrival(self, partition: int, committed: int) -> int:
        """Where a record handed over now stands among the customers records (see above)."""
        return self.read_to.get(partition, committed)

    def release(self, partition: int, until: int, before_offset: int) -> list[tuple[Origin, bytes]]:
        """(origin, record) of every record held with a time at or before `until`, in (time, tie, arrival, offset)
        order, stopping at the first one that arrived at or after the mark read at `before_offset` (no full round
        of marks since)."""
        heap = self._heaps.get(partition, [])
        released, bound = [], 2 * before_offset
        while heap and heap[0][0] <= until and heap[0][2] < bound:
            *_, offset, local = heapq.heappop(heap)
            origin = Origin(local, offset)
            value = self.table.pop(origin.key(partition), None)
            if value is not None:
                released.append((origin, orjson.loads(value)[1].encode()))
        return released

    def next_time(self, partition: int) -> int | None:
        """The event time of the first record still held on `partition`."""
        heap = self._heaps.get(partition)
        return heap[0][0] if heap else None

    def rebuild(self, owned: Iterable[int]) -> int:
        """The heaps of the `owned` partitions, from the table; the number of records held there."""
        keep = set(owned)
        self._heaps = {partition: [] for partition in keep}
        self.read_to = {}
        for key, value in self.table.items():
            if not key.startswith(PREFIX):
                continue
            head, suffix = key[len(PREFIX):].split(b"\x1f")
            partition = int(head)
            if partition in keep:
                local = suffix.startswith(LOCAL)
                offset = int(suffix[len(LOCAL):] if local else suffix)
                ts, _, *rest = orjson.loads(value)
                tie = rest[0] if rest else ""
                arrival = rest[1] if len(rest) > 1 else 2 * offset + 1
                self._heaps[partition].append((ts, tie, arrival, offset, local))
        for heap in self._heaps.values():
            heapq.heapify(heap)
        return len(self)
