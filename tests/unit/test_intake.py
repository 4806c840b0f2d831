"""The input watermark's rules at ingest (stream/intake.py), without services: when a read record may go."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

from faust.types import TP

from orchestrator.contract.events import event_from_document
from orchestrator.stream.intake import Intake, Read

A, B = TP("touchpoints", 0), TP("touchpoints", 1)
T0 = 1_780_000_000_000  # ms


def read(offset: int, ts: int, at: int) -> Read:
    document = {
        "event_id": f"e-{offset}",
        "type": "page_view",
        "channel": "web",
        "customer_id": "c-1",
        "occurred_at": datetime.fromtimestamp(ts / 1000, UTC).isoformat().replace("+00:00", "Z"),
    }
    return Read(SimpleNamespace(offset=offset), at, event_from_document(document), [])


def test_a_record_waits_for_the_watermark_and_for_claims_made_after_it_was_read() -> None:
    intake = Intake(lateness_ms=500)
    intake.read(A, [read(0, T0, at=T0 + 100)])
    assert intake.ready(A) == []  # no watermark yet
    intake.watermark = (T0, T0 + 100)  # passed its time, but the oldest claim was made when it was read
    assert intake.ready(A) == []
    assert intake.released_until(A) == T0 - 1
    intake.watermark = (T0, T0 + 101)
    assert [r.message.offset for r in intake.ready(A)] == [0]
    assert intake.released_until(A) == T0


def test_a_late_record_waits_until_every_partition_is_read_to_the_end_offsets_after_it() -> None:
    intake = Intake(lateness_ms=500)
    intake.watermark = (T0, T0 + 50)  # the watermark is at the wall clock: what comes now dated earlier is late
    intake.read(A, [read(7, T0 - 86_400_000, at=T0 + 100)])  # yesterday's record, replayed
    assert intake.queues[A][0].late
    intake.stamp({0: 8, 1: 30}, asked=T0 + 99)  # asked before it was read: says nothing of it
    intake.positions = {0: 8, 1: 30}
    assert intake.ready(A) == []
    intake.stamp({0: 8, 1: 30}, asked=T0 + 101)
    intake.positions = {0: 8, 1: 12}  # partition 1 still has records produced before it unread
    assert intake.ready(A) == []
    assert intake.released_until(A) == T0 - 86_400_000 - 1  # its customer must wait for it
    intake.positions = {0: 8, 1: 30}
    assert [r.message.offset for r in intake.ready(A)] == [7]
    assert intake.released_until(A) == T0


def test_claims_speak_for_what_is_read_and_for_the_clock_when_read_to_the_end() -> None:
    intake = Intake(lateness_ms=500)
    intake.read(A, [read(4, T0, at=T0 + 100)])
    claims = intake.claims([A, B], {A: 9, B: 3}, now=T0 + 10_000, committed=lambda tp: 3)
    assert claims == {0: (T0 - 500, 5), 1: (T0 + 10_000 - 500, 3)}  # A has unread records; B is idle


def test_a_far_future_record_goes_at_once_and_does_not_move_the_claim() -> None:
    intake = Intake(lateness_ms=500)
    intake.read(A, [read(0, T0, at=T0 + 100), read(1, T0 + 10 * 365 * 86_400_000, at=T0 + 100)])
    intake.watermark = (T0, T0 + 101)
    assert [r.message.offset for r in intake.ready(A)] == [0, 1]
    assert intake.claims([A], {A: 5}, now=T0 + 200, committed=lambda tp: 0) == {0: (T0 - 500, 2)}
