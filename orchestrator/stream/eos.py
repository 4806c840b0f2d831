"""Exactly-once processing on faust-streaming 0.15.3: what its `exactly_once` mode gets wrong, and the fix.

Kafka transactions give exactly-once only if every record an input causes (re-keyed event, actions, audit,
DLQ, table changelogs) and that input's offset commit are in one transaction, and if a worker that lost a
partition can no longer commit for it. faust 0.15.3 (checked against its source) does not ensure this:

1. Its transaction manager picks the transactional producer by a send's *destination* partition, so an
   action sent while processing partition 2 of the input may join partition 0's transaction; sends to
   topics the app does not consume (`actions.*`, `journeys.audit`, the DLQ) have no group and go through
   the plain producer, outside any transaction (faust issues #177, #517).
2. It commits while agents are still processing: an event half-way through (its action sent, its table
   write still in the producer's buffer) gets its records split over two transactions.
3. On a rebalance it stops only the producers of partitions that are neither kept nor standbys, so a
   worker keeps fenced producers for partitions it lost and reuses them when they come back (#323).
4. On revocation it flushes but does not commit: the worker keeps table writes in memory whose
   transaction will be aborted, and serves them if the partition comes back.
5. Around a rebalance its delivery loop can skip records for good: it drops records fetched while the flow
   is suspended but moves its read offset past them, and recovery's seek to the committed offsets races
   that loop. The offset commit then stops at the hole (faust never commits past it), the partition looks
   stuck, and a restart is the only way out (seen in the chaos test: one input partition frozen for
   minutes). The order check of 9. below reads such a partition again from the first record skipped.
6. Under read_committed, table recovery reads "highwaters" that are unknown (-1) until a first fetch, and
   crashes with ConsistencyError when a RocksDB store has data: highwaters are asked of the broker here.
7. Under exactly_once, table recovery ends when its queue has been idle twice for 5 s and the fetch position is
   past the highwater (the last offsets being transaction markers that are never delivered). That costs every
   recovery at least 10 s of idling, and is unsafe: its idle counter is never reset, so a worker that idled
   before a rebalance takes that exit at once, while records are still between the fetcher and the queue: they
   are then dropped as already seen, and the worker runs on a stale table (seen in the 30-minute chaos run:
   actions sent twice, others lost). Here the position counts only once recovery has applied every record the
   fetcher returned for that partition since recovery's seek, and the queue is polled every 0.5 s: a recovery
   ends as soon as it has read its changelogs (with kills every 30 s, 10-s idles had kept workers recovering
   most of the time, and input minutes late).
8. A commit takes the offsets of the events acknowledged when it *starts*; events still in progress then put
   their records in the transaction: their effects committed, their offsets not. After a crash or a rebalance
   they ran again: a dead letter twice, and an anonymous event resolved again after its sign-in (seen in the
   30-minute chaos run). A first fix took the offsets again once the events in progress were done, through
   faust's `_new_offset`; that call returns nothing when faust's own call has just taken a batch (it compares
   with the previous commit), so the offsets stayed behind again (seen in CI: a timer fired twice after a
   crash). Here the gate closes before any offset is taken, and the offsets are those of the records the
   agents processed (`FixedConsumer.processed`), never faust's acknowledgements.
9. When its delivery loop sees an offset jump, it records the offsets in between as a "gap" (transaction
   markers, aborted records) that commits may pass. But records it fetched and then dropped (a batch cut short
   by a flow stop, a seek racing the loop) make the same jump: their offsets were committed unprocessed, the
   events lost for good (seen in the chaos test: 30 events of 6,400 right after "Seek stream partitions to
   committed offsets"; after the fix of 8., 12 events right after a rewind, the gaps recorded while faust read
   past them). Here commits ignore gaps (they follow the records processed), the consumer thread keeps, per
   partition, the offsets of the records its fetcher returned since the last seek (`Run`), and the agents take
   records in order: a record after a jump over records that were returned (or over offsets never read) is
   not processed; the partition is read again from the first one missing.
10. Before committing a transaction faust flushes its buffer of table changelog writes, but that flush gives
   up after 0.1 s without a send: while the broker stalls, writes stay in the buffer, the transaction commits
   an event's actions without its state, and the writes fail later ("Can't send messages while not in
   transaction": the worker crashed; its successor fired the same timers again: actions sent twice, seen in
   CI). Here a commit waits until every buffered write has been handed to the Kafka producer.

The fix, in this module and stream/fetching.py (the fetcher and table recovery; the gate: stream/gate.py), pinned
to that version (the chaos test, `tests/chaos/`, fails if it stops holding):

- every send made while processing an event goes through the producer of the event's *source* partition
  (`{app}-{group}-{partition}`, faust's naming, so the next owner of the partition fences this one); sends
  outside an event (table changelog writes drained from faust's buffer) go by destination partition, which
  for a changelog is the source partition; a send that maps to no transaction is an error, never a silent
  non-transactional send;
- a `Gate`: agents process each batch of one partition's records inside `batching.source`, and a commit closes
  the gate before it takes any offset, so a transaction always holds whole batches, and exactly the offsets of
  the records it holds; faust's buffer of changelog writes is drained into it first;
- a commit commits every open transaction (with the offsets of the events processed in it), in parallel;
- on revocation every transaction is committed before the partitions go; on assignment the producers of
  partitions no longer owned are stopped;
- agents that take each partition's records in order, never past a record the fetcher returned, never a
  record twice;
- table recovery cannot end before the records on their way to it are applied, and ends as soon as they are.

Records read twice after a crash change nothing: the engine drops repeated events by event_id, and merges
remember what they absorbed (stream/parking.py).

Also here: faust hard-codes a 1.5 s fetch wait. Under read_committed a record becomes readable when its
transaction commits, and a fetch already waiting may not return before that wait ends: the consumer here
waits at most `FETCH_MAX_WAIT_MS`, so an action leaves within about a commit interval of its cause.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from contextlib import suppress
from functools import cached_property
from typing import Any, cast

import faust
import faust.tables.recovery
from aiokafka import AIOKafkaProducer
from faust.exceptions import ProducerSendError
from faust.streams import current_event
from faust.transport.consumer import TransactionManager
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, ensure_aiokafka_TP
from faust.transport.drivers.aiokafka import Consumer as KafkaConsumer
from faust.transport.drivers.aiokafka import Producer as KafkaProducer
from faust.transport.drivers.aiokafka import Transport as KafkaTransport
from faust.transport.producer import ProducerBuffer
from faust.types import TP
from faust.types.transports import TransportT
from faust.types.tuples import RecordMetadata
from mode import Service

from orchestrator.stream.fetching import FixedConsumerThread, poll_recovery_queue
from orchestrator.stream.gate import Gate, stop_now
from orchestrator.stream.metrics import Metrics

log = logging.getLogger("orchestrator.eos")
REWIND_CHECK_SECONDS = 1.0  # a rewind whose first record has not come back by then seeks again
STALL_SECONDS = 5.0  # records fetched and not given to the agents for this long: the partition is read again


class DrainableBuffer(ProducerBuffer):
    """faust's buffer of table changelog writes, which a commit can empty for sure (10. above)."""

    sending = 0

    async def _send_pending(self, fut: Any) -> None:
        self.sending += 1
        try:
            await super()._send_pending(fut)
        finally:
            self.sending -= 1

    async def drain(self) -> None:
        """Wait until every write buffered has been handed to the Kafka producer (faust's `flush` gives up after
        0.1 s without a send, as when the broker stalls)."""
        while self.size or self.sending:
            if self.state != "running":
                raise ProducerSendError("the producer buffer stopped with writes in it")
            self.message_sent.clear()
            with suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.message_sent.wait(), 0.1)


class EosProducer(KafkaProducer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        assert not self.app.conf.producer_threaded
        self.buffer = DrainableBuffer(loop=self.loop, beacon=self.beacon)
        self.buffer.app = self.app


class EosTransactionManager(TransactionManager):
    """faust's transaction manager with the fixes above (installed by `EosTransport`)."""

    @property
    def _producers(self) -> dict[str, AIOKafkaProducer]:
        return cast(KafkaProducer, self.producer)._transaction_producers

    @property
    def _gate(self) -> Gate:
        return cast(OrchestratorApp, self.app).gate

    def transactional_id(self, tp: TP) -> str:
        return f"{self.app.conf.id}-{self.app.assignor.group_for_topic(tp.topic)}-{tp.partition}"

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None,
        timestamp: float | None,
        headers: Any,
        *,
        transactional_id: str | None = None,
    ) -> Awaitable[RecordMetadata]:
        event = current_event()
        try:
            if event is not None:
                tid = self.transactional_id(event.message.tp)
            elif partition is not None:
                tid = self.transactional_id(TP(topic, partition))
            else:
                raise KeyError(topic)
        except KeyError:
            raise ProducerSendError(f"no transaction for a send to {topic!r} outside an event") from None
        if tid not in self._producers:
            raise ProducerSendError(f"no transaction {tid} for a send to {topic!r}: partition not owned")
        return await self.producer.send(topic, key, value, partition, timestamp, headers, transactional_id=tid)

    async def commit(self, offsets: Mapping[TP, int], start_new_transaction: bool = True) -> bool:
        """Commit every open transaction, each with its partitions' offsets. Called with the gate closed
        (`FixedConsumer.force_commit`): no event is in progress, and `offsets` cover every event processed."""
        assert self._gate.is_closed, "a commit while events may be in progress"
        by_tid: dict[str, dict[TP, int]] = defaultdict(dict)
        for tp, offset in offsets.items():
            by_tid[self.transactional_id(tp)][tp] = offset
        await cast(DrainableBuffer, self.producer.buffer).drain()  # buffered changelog writes join their transactions
        producers = dict(self._producers)
        unknown = by_tid.keys() - producers.keys()
        if unknown:  # offsets of a partition we no longer own: its next owner reprocesses them
            log.info("not committing offsets of partitions no longer owned: %s", sorted(unknown))
        results = await asyncio.gather(
            *(self._commit_one(tid, producer, by_tid.get(tid, {}), start_new_transaction)
              for tid, producer in producers.items()),
            return_exceptions=True,
        )  # fmt: skip
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            # The transactions' outcome is unknown here (fenced by a new owner, or timed out): the only safe
            # move is to stop; the restarted worker reads committed state and reprocesses the rest.
            stop_now(f"transaction commit failed: {failures[0]!r}")
        return True

    async def _commit_one(self, tid: str, producer: AIOKafkaProducer, offsets: dict[TP, int], start_new: bool) -> None:
        if producer._txn_manager.is_in_transaction():
            if offsets:
                await producer.send_offsets_to_transaction(offsets, self.app.conf.id)
            await producer.commit_transaction()
        if start_new:
            await producer.begin_transaction()

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        """Commit what was processed on every partition before any of them moves (faust only flushes). Not
        through `Consumer.commit`, which returns at once if a commit is under way (events may run after it)."""
        await cast(FixedConsumer, self.consumer).force_commit(start_new_transaction=False)

    async def on_rebalance(self, assigned: set[TP], revoked: set[TP], newly_assigned: set[TP]) -> None:
        wanted = {self.transactional_id(tp) for tp in assigned if not self.app.assignor.is_standby(tp)}
        for tid in sorted(self._producers.keys() - wanted):
            log.info("stopping the transactional producer of a partition no longer owned: %s", tid)
            await self.producer.stop_transaction(tid)
        for tid in sorted(wanted):
            producer = self._producers.get(tid)
            if producer is None or not producer._txn_manager.is_in_transaction():
                await self.producer.maybe_begin_transaction(tid)


class FixedConsumer(KafkaConsumer):
    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return FixedConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def _records_in(self, tp: TP, first: int, stop: int) -> bool | None:
        run = cast(FixedConsumerThread, self._thread).runs.get(tp)
        return None if run is None else run.records_in(first, stop)

    async def force_commit(self, topics: Any = None, start_new_transaction: bool = True) -> bool:
        """Commit, with the gate closed, every open transaction with the offset after the last record the agents
        processed on each partition: exactly the records whose effects the transactions hold (8. and 9. above).
        faust's own offsets (acknowledgements merged with "gaps") are not used."""
        async with cast(OrchestratorApp, self.app).gate.closed():
            offsets = {
                tp: last + 1
                for tp, last in self._processed.items()
                if last + 1 > (self._committed_offset.get(tp) or 0)
                and (topics is None or tp in topics or tp.topic in topics)
            }
            if not self.in_transaction:  # at_least_once: faust's plain offset commit
                if offsets:
                    await self._commit_offsets(offsets)
            elif offsets or not start_new_transaction:  # a record sent in a transaction comes from one processed
                # Not faust's `_commit_offsets`: it drops the offsets of partitions being revoked and, left with
                # none, commits no transaction; its bookkeeping follows.
                await self.transactions.commit(offsets, start_new_transaction=start_new_transaction)
                self._committed_offset.update(offsets)
                self.app.tables.on_commit(offsets)
                self.app.monitor.on_tp_commit(offsets)
        for tp, offset in offsets.items():  # faust's bookkeeping, which only its own commit would trim
            acked = self._acked.get(tp)
            if acked:
                self._acked_index[tp].difference_update(o for o in acked if o < offset)
                acked[:] = [o for o in acked if o >= offset]
            self._gap[tp].chop(0, offset)
        return bool(offsets)

    def processed(self, tp: TP, offset: int) -> None:
        """The agents are done with this record (inside the gate): a commit may pass it. (aiokafka's commit wants
        its own TopicPartition; `assigned()` gives faust's TP: equal, but not the same type.)"""
        self._processed[ensure_aiokafka_TP(tp)] = offset

    async def seek_wait(self, partitions: Mapping[TP, int]) -> None:
        for tp in partitions:
            self._read_offset[tp] = None  # a read offset left from an earlier pass would drop what is read again
        await super().seek_wait(partitions)

    async def position(self, tp: TP) -> int | None:
        """Only used by recovery's "aborted transactions up to the highwater" shortcut (7. above): the fetch
        position counts once recovery has applied every record fetched for `tp` since its seek."""
        run = cast(FixedConsumerThread, self._thread).runs.get(tp)
        if run is None:
            return 0
        end, offsets = run.end, run.offsets
        applied = cast(Any, self.app.tables).recovery.active_offsets.get(tp)
        if offsets and (applied is None or applied < offsets[-1]):
            return 0  # records on their way from the fetcher to the recovery queue
        return end

    async def perform_seek(self) -> None:
        """After a rebalance: stream partitions start again at their committed offsets (the order check restarts)."""
        self._sought.clear()
        for forget in cast(OrchestratorApp, self.app).on_seek:
            forget()  # what waits in memory is read again from the committed offsets
        self._last.clear()
        self._rewinding.clear()
        self._stalled.clear()
        self._processed.clear()
        try:
            await super().perform_seek()
        finally:
            self._sought.set()

    async def in_order(self, tp: TP, offset: int) -> bool:
        """Whether the agents may process this record now (9. above): not when it is read twice, nor after a jump
        over records the fetcher returned (or offsets it never read): the partition is then read again from the
        first offset missing (commits never pass it: they follow `processed`)."""
        await self._sought.wait()  # where each partition starts is known once `perform_seek` is done
        last = self._last.get(tp)
        if last is None:
            committed = self._committed_offset.get(tp)
            last = None if committed is None else committed - 1
        if last is not None:
            if offset <= last:
                return False  # processed, or committed, already
            if offset > last + 1 and self._records_in(tp, last + 1, offset) is not False:
                if tp in self._rewinding:
                    self._read_offset[tp] = last + 1  # faust's read offset must not pass it again
                else:
                    log.warning("faust dropped records of %s before %s: reading again from %s", tp, offset, last + 1)
                    self._rewinding[tp] = (last + 1, time.monotonic())
                    await self.seek_wait({tp: last + 1})
                return False
        self._rewinding.pop(tp, None)
        self._last[tp] = offset
        return True

    @Service.task
    async def _rewind_again(self) -> None:
        """A rewind whose first record has not come back (faust may drop it again): seek once more. And a partition
        whose fetched records never reached the agents: read it again (`_unstick`)."""
        while not self.should_stop:
            await self.sleep(REWIND_CHECK_SECONDS)
            now = time.monotonic()
            for tp, (first, since) in list(self._rewinding.items()):
                if now - since > REWIND_CHECK_SECONDS and self._rewinding.get(tp) == (first, since):
                    self._rewinding[tp] = (first, now)
                    await self.seek_wait({tp: first})
            if self._sought.is_set():
                await self._unstick(now)

    async def _unstick(self, now: float) -> None:
        """`in_order` sees faust drop records (5. above) only when a later record of the partition comes: when the
        dropped ones were its last (a takeover right after the input stopped), nothing comes, the partition's
        commit and its event time stay behind for good, and the watermark holds every customer back (seen in the
        two-worker takeover test: one input partition committed 19 of 41). So: a stream partition whose fetcher
        returned records after the last one the agents were given, and that gave them none for `STALL_SECONDS`,
        is read again from the first one missing."""
        runs = cast(FixedConsumerThread, self._thread).runs
        for tp, run in list(runs.items()):
            last = self._last.get(tp)
            if last is None:
                committed = self._committed_offset.get(tp)
                if committed is None or tp in self._rewinding:
                    continue  # not a stream partition (a changelog being recovered), or already read again
                last = committed - 1
            if tp in self._rewinding or run.records_in(last + 1, run.end) is not True:
                self._stalled.pop(tp, None)
                continue
            seen = self._stalled.get(tp)
            if seen is None or seen[0] != last:
                self._stalled[tp] = (last, now)
            elif now - seen[1] > STALL_SECONDS:
                log.warning("records of %s after %s were fetched but never processed: reading again from %s", tp,
                            last, last + 1)  # fmt: skip
                del self._stalled[tp]
                self._rewinding[tp] = (last + 1, now)
                await self.seek_wait({tp: last + 1})

    @cached_property
    def _last(self) -> dict[TP, int]:
        """Per stream partition: the offset of the last record the agents were given."""
        return {}

    @cached_property
    def _rewinding(self) -> dict[TP, tuple[int, float]]:
        """Per stream partition read again: the first offset to come back, and when it was sought."""
        return {}

    @cached_property
    def _stalled(self) -> dict[TP, tuple[int, float]]:
        """Per stream partition with records fetched past the agents: the last offset given them, and since when."""
        return {}

    @cached_property
    def _processed(self) -> dict[TP, int]:
        """Per stream partition: the offset of the last record the agents processed (since the last seek)."""
        return {}

    @cached_property
    def _sought(self) -> asyncio.Event:
        return asyncio.Event()


class EosTransport(KafkaTransport):
    Consumer = FixedConsumer
    Producer = EosProducer
    TransactionManager = EosTransactionManager


class OrchestratorApp(faust.App):
    """A faust App whose consumer uses `EosTransactionManager`, with the gate its agents process inside."""

    metrics: Metrics  # set by `create_app`

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate = Gate()
        self.on_seek: list[Callable[[], None]] = []  # called when every stream partition is read again
        poll_recovery_queue()

    def _new_transport(self) -> TransportT:
        return EosTransport(self.conf.broker_consumer, self)

    async def in_order(self, message: Any) -> bool:
        """Whether an agent may process this message now; else it skips it (see `FixedConsumer.in_order`)."""
        return await cast(FixedConsumer, self.consumer).in_order(message.tp, message.offset)

    def assigned(self) -> set[TP]:
        """The partitions the underlying aiokafka consumer is assigned now."""
        return self.consumer.assignment()

    async def end_offsets(self, partitions: list[TP]) -> Mapping[TP, int]:
        """One ListOffsets request, in faust's consumer thread (read_committed: last stable offsets)."""
        thread = self.consumer._thread  # type: ignore[attr-defined]
        return cast(Mapping[TP, int], await thread.call_thread(thread._ensure_consumer().end_offsets, partitions))

    def committed_offset(self, tp: TP) -> int:
        return cast(FixedConsumer, self.consumer)._committed_offset.get(tp) or 0
