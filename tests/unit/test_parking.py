"""Records held while a merge travels (stream/parking.py), the commit gate and the changelog buffer's drain
(stream/eos.py): no services."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from faust.transport.producer import ProducerBuffer

from orchestrator.stream.eos import DrainableBuffer
from orchestrator.stream.gate import Gate
from orchestrator.stream.parking import PARK_LIMIT_MS, Parking
from orchestrator.stream.records import Expect


def test_records_wait_for_every_expected_merge_then_come_out_in_order() -> None:
    table: dict[bytes, bytes] = {}
    parking = Parking(table)
    parking.expect(Expect("c-1", ("anon:a", "anon:b"), 1_000))
    assert parking.waiting("c-1") == ["anon:a", "anon:b"] and parking.waiting("c-2") is None
    assert parking.hold("c-1", b'{"n": 1}', 2_000) == []
    assert parking.hold("c-1", b'{"n": 2}', 3_000) == []
    assert parking.arrived("c-1", "anon:a") == []  # still waiting for anon:b
    assert parking.arrived("c-1", "anon:b") == [b'{"n": 1}', b'{"n": 2}']
    assert parking.waiting("c-1") is None


def test_an_overdue_merge_releases_the_records_instead_of_holding_them_for_ever() -> None:
    parking = Parking({})
    parking.expect(Expect("c-1", ("anon:a",), 0))
    assert parking.hold("c-1", b"1", PARK_LIMIT_MS - 1) == []
    assert parking.hold("c-1", b"2", PARK_LIMIT_MS) == [b"1", b"2"]
    assert parking.waiting("c-1") is None


def test_a_merge_read_twice_is_recognised() -> None:
    parking = Parking({})
    parking.expect(Expect("c-1", ("anon:a",), 5_000))
    assert parking.arrived("c-1", "anon:a") == []
    parking.absorbed("c-1", "anon:a", 5_000)
    assert parking.already_absorbed("c-1", "anon:a", 5_000)
    assert not parking.already_absorbed("c-1", "anon:a", 6_000)  # another merge of the same key, later
    parking.expect(Expect("c-1", ("anon:a",), 5_000))  # the same Expect again: nothing to wait for
    assert parking.waiting("c-1") is None


def test_the_gate_lets_events_run_together_and_a_commit_run_alone() -> None:
    async def scenario() -> list[str]:
        gate, log = Gate(), []

        async def event(name: str, seconds: float) -> None:
            async with gate.event():
                log.append(f"{name} in")
                await asyncio.sleep(seconds)
                log.append(f"{name} out")

        async def commit() -> None:
            await asyncio.sleep(0.01)  # after both events started
            assert not gate.is_closed
            async with gate.closed():
                assert gate.is_closed  # what the transaction manager's commit asserts
                log.append("commit")
                await asyncio.sleep(0.02)
                log.append("commit done")

        async def late_event() -> None:
            await asyncio.sleep(0.02)  # arrives while the commit waits or runs
            await event("c", 0)

        await asyncio.gather(event("a", 0.03), event("b", 0.05), commit(), late_event())
        return log

    log = asyncio.run(scenario())
    assert log.index("commit") > max(log.index("a out"), log.index("b out"))  # waited for events in progress
    assert log.index("c in") > log.index("commit done")  # held back until the commit ended
    assert log[:2] == ["a in", "b in"]  # events ran together


def test_drain_waits_for_every_buffered_write_where_fausts_flush_gives_up() -> None:
    """Fix 10: a send slower than 0.1 s (a stalled broker) makes faust's flush return with writes still buffered;
    a commit then would leave them out of its transaction. `drain` returns only once all were handed over."""
    sent: list[int] = []

    class SlowSend(ProducerBuffer):
        async def _send_pending(self, fut: Any) -> None:
            await asyncio.sleep(0.25)
            sent.append(fut)

    class Probe(DrainableBuffer, SlowSend):  # DrainableBuffer's counting around the slow send
        pass

    async def scenario() -> tuple[int, int]:
        buffer = Probe()
        buffer.app = SimpleNamespace(conf=SimpleNamespace(producer_threaded=False))
        await buffer.start()
        try:
            for n in range(3):
                buffer.put(n)  # any object: the slow send only records it
            await buffer.flush()
            left_by_flush = buffer.size + buffer.sending
            await buffer.drain()
            return left_by_flush, buffer.size + buffer.sending
        finally:
            await buffer.stop()

    left_by_flush, left_by_drain = asyncio.run(scenario())
    assert left_by_flush > 0  # faust's flush gave up
    assert left_by_drain == 0 and sent == [0, 1, 2]
