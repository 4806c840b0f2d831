"""The agents take their records in batches, one partition's records at a time, and write what a batch causes
once it is done: table writes coalesced to the last value per key (`Staged`), Kafka records handed to the
producer in one pass (`Outbox`), and Redis writes in one pipeline (serving/redis.py, `Pending`).

A batch of one partition is one unit for the commit gate (stream/gate.py): its records, its table writes and its
offsets always go in one transaction, and the commit waits until the broker has its records. Inside it, faust's
"current event" is the last of the batch's events, so what still goes through faust (a dead letter; the RocksDB
store, which files a write under the current event's partition) goes where it would for one event.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Iterator, MutableMapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, cast

import faust
from faust.exceptions import ProducerSendError
from faust.streams import _current_event

from orchestrator.serving.redis import Pending
from orchestrator.stream.eos import EosTransactionManager, FixedConsumer, OrchestratorApp


class Staged(MutableMapping[bytes, bytes]):
    """A faust table seen through a batch's writes: reads see them at once; the table (and its changelog) gets
    the last value of each key when the batch is done, not every value it had in between."""

    def __init__(self, table: Any) -> None:
        self.table = table
        self.changes: dict[bytes, bytes | None] = {}  # None: deleted

    def __getitem__(self, key: bytes) -> bytes:
        if key in self.changes:
            value = self.changes[key]
            if value is None:
                raise KeyError(key)
            return value
        return cast(bytes, self.table[key])

    def get(self, key: bytes, default: Any = None) -> Any:
        if key in self.changes:
            value = self.changes[key]
            return default if value is None else value
        return self.table.get(key, default)

    def __contains__(self, key: object) -> bool:
        if key in self.changes:
            return self.changes[key] is not None
        return key in self.table

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.changes[key] = value

    def __delitem__(self, key: bytes) -> None:
        if key not in self:
            raise KeyError(key)
        self.changes[key] = None  # a staged delete

    def pop(self, key: bytes, default: Any = None) -> Any:
        value = self.get(key)
        if value is None:
            return default
        self.changes[key] = None  # a staged delete
        return value

    def __iter__(self) -> Iterator[bytes]:
        for key in self.table:
            if self.changes.get(key, b"") is not None:
                yield key
        for key, value in self.changes.items():
            if value is not None and key not in self.table:
                yield key

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def flush(self, outbox: Outbox) -> None:
        """Into the table's store, and its changelog records into the outbox (faust's own path would send them
        one at a time through its buffer): the changelog partition is the batch's, as for faust's writes."""
        store, changelog = self.table.data, self.table.changelog_topic.get_topic_name()
        for key, value in self.changes.items():
            if value is not None:
                store[key] = value
            elif key in store:
                del store[key]
            else:
                continue  # held and released in the same batch: it never reached the table
            outbox.records.append((changelog, key, value, outbox.partition))
            outbox.stores[changelog] = store
        self.changes.clear()


@dataclass(frozen=True, slots=True)
class Tables:
    """The customer agent's tables (stream/topology.py), each seen through the current batch's writes."""

    customers: Staged
    timers: Staged
    parked: Staged
    kpis: Staged
    held: Staged

    def flush(self, outbox: Outbox) -> None:
        for table in (self.customers, self.timers, self.parked, self.kpis, self.held):
            table.flush(outbox)


class Outbox:
    """What one partition's batch sends to Kafka and writes to Redis, in the order it was caused."""

    def __init__(self, partition: int) -> None:
        self.partition = partition
        self.records: list[tuple[str, bytes | None, bytes | None, int | None]] = []  # topic, key, value, partition
        self.stores: dict[str, Any] = {}  # changelog topic -> the table's store (for its persisted offset)
        self.redis = Pending()

    def send(self, topic: faust.TopicT, key: bytes | None, value: bytes) -> None:
        self.records.append((topic.get_topic_name(), key, value, None))


async def batches(app: OrchestratorApp, stream: faust.StreamT[bytes], size: int, wait: float) -> AsyncIterator[
    list[list[Any]]
]:  # fmt: skip
    """Up to `size` records at a time (or what came within `wait` seconds), as one list of events per partition
    in offset order, only those the agents may process now (`OrchestratorApp.in_order`)."""
    async for events in cast(Any, stream).take_events(size, within=wait):  # faust's stubs lack it
        parts: dict[Any, list[Any]] = {}
        for event in events:
            if await app.in_order(event.message):
                parts.setdefault(event.message.tp, []).append(event)
        yield list(parts.values())


@asynccontextmanager
async def source(app: OrchestratorApp, events: Sequence[Any]) -> AsyncIterator[None]:
    """Process these events (one partition's, in order) as one unit between two commits, with faust's current
    event set to the last of them: what they write joins their partition's transaction, with their offsets."""
    last = events[-1]
    async with app.gate.event():
        token = _current_event.set(weakref.ref(last))
        try:
            yield
        finally:
            _current_event.reset(token)
        cast(FixedConsumer, app.consumer).processed(last.message.tp, last.message.offset)


class _Filed:
    """A stand-in for faust's current event where there is none (ingest's tick): only its partition is read."""

    def __init__(self, partition: int) -> None:
        self.message = SimpleNamespace(partition=partition)


@contextmanager
def filed_under(partition: int) -> Iterator[None]:
    """Table writes made outside a stream (ingest handing records over) filed under `partition`, as the RocksDB
    store files each write under the current event's partition."""
    stand_in = _Filed(partition)
    token = _current_event.set(weakref.ref(stand_in))  # type: ignore[arg-type]
    try:
        yield
    finally:
        _current_event.reset(token)


async def send_all(app: OrchestratorApp, tp: Any, outbox: Outbox) -> None:
    """Hand the outbox's records to the Kafka producer of `tp`'s transaction (at_least_once: the plain producer),
    in order, without a round trip each. The next commit waits until the broker has them all (stream/gate.py): a
    record not delivered stops the worker before its batch's offsets are committed."""
    if not outbox.records:
        return
    producer = cast(Any, app.producer)
    consumer = cast(FixedConsumer, app.consumer)
    if consumer.in_transaction:
        tid = cast(EosTransactionManager, consumer.transactions).transactional_id(tp)
        kafka = producer._transaction_producers.get(tid)
        if kafka is None:
            raise ProducerSendError(f"no transaction {tid}: partition not owned")
    else:
        kafka = producer._ensure_producer()
    send, records, stores = kafka.send, outbox.records, outbox.stores
    sent = [await send(topic, value, key=key, partition=partition) for topic, key, value, partition in records]

    async def delivered() -> None:
        """Tell each table's store how far its changelog is written, as faust does for its own writes."""
        written = {}
        for (topic, _, _, partition), metadata in zip(records, await asyncio.gather(*sent), strict=True):
            if partition is not None and topic in stores:
                written[metadata.topic_partition] = (stores[topic], metadata.offset)
        for changelog, (store, offset) in written.items():
            if consumer.in_transaction:
                app.tables.persist_offset_on_commit(store, changelog, offset)
            else:
                store.set_persisted_offset(changelog, offset)

    app.gate.confirm_at_commit(delivered())
