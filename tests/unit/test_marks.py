"""Watermark marks and holding without services: a mark to a customers partition rises at once when the release it
speaks for sent nothing there through the customers topic (one hop), and only once committed when it did; a record
handed over in one hop waits, like one read from the topic, for a round of marks read after it."""

from __future__ import annotations

from typing import Any

from faust.types import TP

from orchestrator.stream.holding import Holding, Origin
from orchestrator.stream.records import Mark
from orchestrator.stream.watermark import IngestProgress, Watermarks

INPUT = TP("touchpoints", 0)


class App:
    """The two things `IngestProgress` asks of the app: what it owns and what is committed."""

    def __init__(self) -> None:
        self.committed = 0

    def assigned(self) -> set[TP]:
        return {INPUT}

    def committed_offset(self, tp: TP) -> int:
        return self.committed


def untils(progress: IngestProgress) -> dict[int, int]:
    return {destination: mark.until for destination, mark in progress.marks(3)}


def test_a_mark_rises_at_once_where_nothing_travelled_and_after_the_commit_where_something_did() -> None:
    app = App()
    progress = IngestProgress(app, INPUT.topic, 1)  # type: ignore[arg-type]
    assert untils(progress) == {}  # nothing released yet: no mark
    progress.claimed(0, offset=10, until=100, sent={1})  # records went to customers partition 1 only
    assert untils(progress) == {0: 100, 2: 100}  # partition 1 must not learn of them before they are readable
    progress.claimed(0, offset=20, until=200, sent=set())
    assert untils(progress) == {0: 200, 2: 200}
    app.committed = 10
    assert untils(progress) == {0: 200, 1: 200, 2: 200}
    progress.claimed(0, offset=30, until=300, sent={2})
    progress.claimed(0, offset=40, until=400, sent=set())
    assert untils(progress) == {0: 400, 1: 400, 2: 200}
    progress.claimed(0, offset=40, until=150, sent={0})  # a late record read: every mark falls at once
    assert untils(progress) == {0: 150, 1: 150, 2: 150}
    app.committed = 40
    assert untils(progress) == {0: 150, 1: 150, 2: 150}


def test_a_record_handed_over_waits_for_marks_read_after_it_and_runs_in_event_time_order() -> None:
    table: dict[bytes, Any] = {}
    holding = Holding(table)
    holding.taken(0, 4)  # the customer agent has read up to offset 5
    holding.hold(0, 5, ts=300, tie="b", raw=b'{"x": 1}')
    key, value, entry = holding.local(0, input_offset=7, ts=200, tie="a", raw=b'{"y": 2}', read_to=7)
    table[key] = value
    holding.push(0, entry)
    assert holding.release(0, until=1000, before_offset=5) == []  # no mark read after either
    assert holding.release(0, until=1000, before_offset=6) == []  # the earlier one (one hop) waits for offset 7
    assert holding.release(0, until=1000, before_offset=7) == [(Origin(True, 7), b'{"y": 2}'),
                                                                (Origin(False, 5), b'{"x": 1}')]  # fmt: skip
    assert table == {}


def test_the_holding_is_rebuilt_from_the_table_with_both_kinds_of_record() -> None:
    table: dict[bytes, Any] = {}
    holding = Holding(table)
    holding.hold(0, 5, ts=300, tie="b", raw=b"{}")
    key, value, _ = holding.local(0, input_offset=7, ts=200, tie="a", raw=b"[]", read_to=6)
    table[key] = value
    rebuilt = Holding(table)
    assert rebuilt.rebuild([0]) == 2
    assert [origin for origin, _ in rebuilt.release(0, until=1000, before_offset=7)] == [Origin(True, 7),
                                                                                         Origin(False, 5)]  # fmt: skip


def test_one_hop_places_a_key_where_kafkas_producers_do() -> None:
    """One hop relies on it: the customers partition ingest computes is where the producer sends that key."""
    from aiokafka.partitioner import DefaultPartitioner

    from orchestrator.stream.ingest import partition_of

    for partitions in (1, 4, 7, 32):
        every = list(range(partitions))
        for key in (b"c-1", b"anon:ck-42", "c-\u00e9\u4e2d".encode(), b"", b"x" * 300):
            assert partition_of(key, partitions) == DefaultPartitioner()(key, every, every)


def test_two_copies_of_one_event_handed_over_together_run_in_the_order_they_were_read() -> None:
    """Offsets compare as numbers: the copy read at offset 9 goes before the one read at offset 21 (as text, "21"
    sorts first: the hostile-input test's `duplicate-purchase` ran a purchase where simulate runs the cart)."""
    table: dict[bytes, Any] = {}
    holding = Holding(table)
    for offset, raw in ((21, b'"second"'), (9, b'"first"')):
        key, value, entry = holding.local(3, input_offset=offset, ts=100, tie="e-5", raw=raw, read_to=4)
        table[key] = value
        holding.push(3, entry)
    assert [raw for _, raw in holding.release(3, until=100, before_offset=4)] == [b'"first"', b'"second"']
    for offset, raw in ((21, b'"second"'), (9, b'"first"')):
        key, value, _ = holding.local(3, input_offset=offset, ts=100, tie="e-5", raw=raw, read_to=4)
        table[key] = value
    rebuilt = Holding(table)
    rebuilt.rebuild([3])
    assert [raw for _, raw in rebuilt.release(3, until=100, before_offset=4)] == [b'"first"', b'"second"']


def test_marks_of_a_partition_taken_back_are_forgotten_until_every_input_partition_speaks_again() -> None:
    """A partition given away and taken back is read again from its committed offset: the marks remembered from
    before would let a timer fire, and a seal speak, for records travelling to it that are not read again yet (the
    two-worker takeover test saw recommendations made on an empty model). A partition kept keeps its marks."""
    watermarks = Watermarks()
    watermarks.rebalanced({0, 1})
    for partition in (0, 1):
        for source in range(2):
            watermarks.mark(partition, Mark(source, 2, 5_000, 7), offset=10 + source)
    assert watermarks.current(0) == (5_000, 10)
    watermarks.rebalanced({1})  # 0 given away
    watermarks.rebalanced({0, 1})  # and taken back
    assert watermarks.current(0) is None and watermarks.coverage(0) == {}
    assert watermarks.current(1) == (5_000, 10)  # kept throughout
    watermarks.mark(0, Mark(0, 2, 6_000, 9), offset=40)
    assert watermarks.current(0) is None  # input partition 1 has not spoken since
    watermarks.mark(0, Mark(1, 2, 5_500, 9), offset=41)
    assert watermarks.current(0) == (5_500, 40)
    assert watermarks.coverage(0) == {0: 9, 1: 9}
