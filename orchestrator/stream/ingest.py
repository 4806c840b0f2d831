"""The ingest agent: validate each input record, write its identity fact to the shared history, hold it until the
input watermark has passed its time (stream/intake.py), then decide who the customer is as of that time
(engine/history.py) and route it to its customer's partition, so producers may key events any way: straight into
that partition's holding when it is the partition the event was read on (one hop: `Routing`), else re-keyed by
customer key onto the internal topic.

A merge of anonymous customers into a known one travels as an `Expect` record to the known customer's partition
(hold its records until the merge is in) and a `Handover` record to each anonymous key's partition.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, cast

import faust
import orjson
from aiokafka.errors import KafkaError
from aiokafka.partitioner import murmur2
from faust.types import TP

from orchestrator.contract.events import Event
from orchestrator.engine.history import AsOf, fact_of, order_of, restricted
from orchestrator.engine.identity import conflict_records, event_identifiers, resolve_event
from orchestrator.engine.outcome import Record
from orchestrator.serving.redis import Trail
from orchestrator.stream.batching import Outbox, batches, filed_under, send_all
from orchestrator.stream.eos import FixedConsumer
from orchestrator.stream.holding import Entry
from orchestrator.stream.intake import AHEAD_MS, Read
from orchestrator.stream.records import Rejected, accept, dlq_record, encode_event, encode_expect, encode_handover
from orchestrator.stream.shell import INFRASTRUCTURE_ERRORS, INGEST, Shell, crash_on

log = logging.getLogger("orchestrator.worker")


def now_ms() -> int:
    return int(time.time() * 1000)


async def read(shell: Shell, tp: TP, messages: list[Any]) -> None:
    """Validate a partition's batch, write the facts of its events to the history (one round trip), hold it."""
    reads, facts, at = [], [], now_ms()
    for message in messages:
        result = accept(message.value, shell.settings.max_event_bytes)
        if isinstance(result, Rejected):
            reads.append(Read(message, at, None, [], result.reason))
            continue
        identifiers = event_identifiers(result, shell.identity_secret)
        if (fact := fact_of(result, identifiers)) is not None:
            facts.append(fact)
        reads.append(Read(message, at, result, identifiers))
    await shell.history.add(facts)  # before any claim can speak for these records
    shell.intake.read(tp, reads)


async def release(shell: Shell, tp: TP) -> None:
    """Resolve and route the records of `tp` the watermark has passed; commit up to the oldest still waiting; tell
    the customers partitions (through the next marks) how far `tp` is released. Called inside the commit gate."""
    async with shell.releasing.setdefault(tp, asyncio.Lock()):
        ready = shell.intake.ready(tp)
        routing = Routing.of(shell, tp)
        if ready:
            outbox = Outbox(tp.partition)
            await resolve(shell, outbox, ready, routing)
            await shell.serving.write(outbox.redis)  # the graph's links (for the API), before the records go out
            with filed_under(tp.partition):
                shell.handed.flush(outbox)
            await send_all(shell.app, tp, outbox)
            for entry in routing.entries:  # only now: a release of one of them comes after its write in the changelog
                shell.holding.push(tp.partition, entry)
            shell.metrics.hops.labels("1").inc(len(routing.entries))
            cast(FixedConsumer, shell.app.consumer).processed(tp, ready[-1].message.offset)
            for record in ready:
                shell.done(INGEST, record.message)
        until = shell.intake.released_until(tp)
        if until is not None:
            offset = shell.intake.next_offset(tp, shell.app.committed_offset(tp))
            shell.progress.claimed(tp.partition, offset, until, routing.sent)


class Routing:
    """Where a release's events go. Events of input partition `p` whose customer lives on customers partition `p`,
    owned here (the topics are co-partitioned: the same partition count, the same partitioner, one transaction per
    partition number), go straight into that partition's holding: one hop (docs/streaming.md). Only an event that
    merges nobody, read in time (not late) and not far ahead; the others travel through the customers topic, and
    the marks to the partitions they went to wait for their commit (`sent`)."""

    def __init__(self, customers: TP, partitions: int, one_hop: bool, read_to: int) -> None:
        self.customers = customers
        self.partitions = partitions
        self.one_hop = one_hop  # False: no event of this release can take one hop
        self.read_to = read_to  # where the customer agent stands on the customers partition
        self.entries: list[Entry] = []  # the holding's entries of those handed over
        self.sent: set[int] = set()  # the customers partitions records were sent to

    @classmethod
    def of(cls, shell: Shell, tp: TP) -> Routing:
        app, partitions = shell.app, shell.partitions
        customers = TP(shell.settings.topic_customers, tp.partition)
        assignor = app.assignor
        able = (partitions.touchpoints == partitions.customers and customers in app.assigned() and not app.rebalancing
                and assignor.group_for_topic(tp.topic) == assignor.group_for_topic(customers.topic))  # fmt: skip
        read_to = shell.holding.arrival(tp.partition, app.committed_offset(customers)) if able else 0
        return cls(customers, partitions.customers, able, read_to)

    def takes(self, key: bytes, read: Read) -> bool:
        """Whether this event (resolved to the customer key `key`) takes one hop."""
        event = read.event
        if not self.one_hop or read.late or event is None or event.ts > read.at + AHEAD_MS:
            return False
        return partition_of(key, self.partitions) == self.customers.partition

    def send(self, outbox: Outbox, topic: faust.TopicT, key: bytes, value: bytes) -> None:
        outbox.send(topic, key, value)
        self.sent.add(partition_of(key, self.partitions))


def partition_of(key: bytes, partitions: int) -> int:
    """Where Kafka's producers (aiokafka's and Java's default partitioner: murmur2) put a record with this key."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


async def resolve(shell: Shell, outbox: Outbox, ready: list[Read], routing: Routing) -> None:
    """Each event's customer as of its time: the batch's histories gathered together, a round trip a step."""
    gatherings = {n: AsOf(order_of(r.event), r.identifiers) for n, r in enumerate(ready) if r.event and r.identifiers}
    await shell.history.gather(list(gatherings.values()))
    for number, record in enumerate(ready):
        event = record.event
        if event is None:
            dead_letter(shell, outbox, record)
            continue
        graph = gatherings[number].graph() if number in gatherings else {}
        resolution, resolved = resolve_event(event, record.identifiers, graph)
        outbox.redis.link(resolution.links, restricted(graph, record.identifiers))
        conflicts = conflict_records(resolution, resolved.data["occurred_at"])
        route(shell, outbox, routing, record, resolved, resolution.merges, conflicts)


def dead_letter(shell: Shell, outbox: Outbox, record: Read) -> None:
    message = record.message
    log.info("to DLQ: %s (%s[%s]@%s)", record.reason, message.topic, message.partition, message.offset)
    shell.metrics.dlq.inc()
    value = dlq_record(record.reason, topic=message.topic, partition=message.partition, offset=message.offset,
                       timestamp_ms=message.timestamp and int(message.timestamp * 1000), key=message.key,
                       value=message.value)  # fmt: skip
    outbox.send(shell.topology.dlq, message.key, value)


def route(
    shell: Shell, outbox: Outbox, routing: Routing, read: Read, resolved: Event, merges: list[str],
    conflicts: list[Record],
) -> None:
    """The event to its customer's partition (straight into its holding if it takes one hop), and a merge's
    records; identity conflicts to the audit."""
    topology, key = shell.topology, resolved.customer.encode()
    if conflicts:
        log.warning("identity conflict (not merged): %s", conflicts)
        outbox.send(topology.audit, key, orjson.dumps(conflicts))
        outbox.redis.trail(resolved.customer, Trail(0, [(resolved.ts, record) for record in conflicts]))
    if not merges and routing.takes(key, read):
        table_key, value, entry = shell.holding.local(outbox.partition, read.message.offset, resolved.ts, resolved.id,
                                                      encode_event(resolved), routing.read_to)  # fmt: skip
        shell.handed[table_key] = value
        routing.entries.append(entry)
        return
    shell.metrics.hops.labels("2").inc()
    if not merges:
        routing.send(outbox, topology.customers, key, encode_event(resolved))
        return
    # The anonymous state lives on another partition: it hands itself over, then the event runs. Meanwhile
    # the known customer holds its records, so its later events run after the merge.
    routing.send(outbox, topology.customers, key, encode_expect(resolved.customer, merges, resolved.ts, resolved.id))
    for number, anonymous in enumerate(merges):
        carried = resolved if number == len(merges) - 1 else None
        handover = encode_handover(anonymous, resolved.customer, resolved.ts, carried, resolved.id)
        routing.send(outbox, topology.customers, anonymous.encode(), handover)


async def tick(shell: Shell) -> None:
    """Every `ORCH_TIMER_INTERVAL`: claim how far the owned input partitions are read, learn the input watermark,
    release what it allows on every owned partition (quiet ones too)."""
    app, topic = shell.app, shell.settings.topic_touchpoints
    if app.rebalancing:
        return
    owned = sorted((tp for tp in app.assigned() if tp.topic == topic), key=lambda tp: tp.partition)
    every = [TP(topic, partition) for partition in range(shell.partitions.touchpoints)]
    asked = now_ms()
    try:
        ends = await app.end_offsets(every)
    except KafkaError:
        return  # broker unreachable: no claim, the next tick asks again
    now, intake = now_ms(), shell.intake
    claims = intake.claims(owned, ends, now, app.committed_offset)
    intake.stamp({tp.partition: end for tp, end in ends.items()}, asked)
    intake.watermark, intake.positions = await shell.history.claim(topic, claims, now, shell.partitions.touchpoints)
    for tp in owned:
        async with app.gate.event(), crash_on(INFRASTRUCTURE_ERRORS):
            if not app.rebalancing and tp in app.assigned():
                await release(shell, tp)


async def run(shell: Shell, stream: faust.StreamT[bytes]) -> None:
    """Validate and hold each record, in batches; release what the watermark allows at once (the rest: `tick`)."""
    app, settings = shell.app, shell.settings
    async for parts in batches(app, stream, settings.batch_size, settings.batch_wait):
        for events in parts:
            tp = events[0].message.tp
            async with app.gate.event(), crash_on(INFRASTRUCTURE_ERRORS):
                await read(shell, tp, [event.message for event in events])
                await release(shell, tp)
