"""The customer agent: owns each customer's state and applies the per-customer step (engine/step.py) to events,
timer firings and merges, in event-time order (stream/watermark.py); the shell around the step is only I/O.

Tables: `customers` (state), `timers` (pending timers: the timer index's durable copy), `held` (records waiting
for the watermark: stream/holding.py), `parked` (records held during a merge: stream/parking.py) and `kpis` (the
partition's KPI counters), each seen through the current batch's writes (stream/batching.py). Redis gets the
summaries, the audit trails and the changed KPI counters in one pipeline per batch.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import replace
from types import SimpleNamespace
from typing import Any, assert_never

import faust
import orjson

from orchestrator.contract.events import Event
from orchestrator.engine import Outcome, Timer
from orchestrator.engine.broadcast import VISIT
from orchestrator.engine.history import fact_of
from orchestrator.engine.step import Item, Step, item_time, late_record, step
from orchestrator.measurement import kpis
from orchestrator.serving.redis import Trail
from orchestrator.stream import occurrences
from orchestrator.stream.batching import Outbox, batches, send_all, source
from orchestrator.stream.learning import encode_basket
from orchestrator.stream.records import (
    MAX_STATE_BYTES,
    Absorb,
    Expect,
    Handover,
    Internal,
    Mark,
    Refused,
    decode_internal,
    decode_state,
    encode_absorb,
    encode_event,
    encode_state,
    encode_timer,
    handover_tie,
)  # fmt: skip
from orchestrator.stream.shell import CUSTOMER, INFRASTRUCTURE_ERRORS, Shell, crash_on
from orchestrator.stream.timers import timer_key

log = logging.getLogger("orchestrator.worker")


def publish(shell: Shell, outbox: Outbox, key: str, outcomes: list[Outcome]) -> None:
    """Actions to `actions.<channel>`; the step's decisions to the audit topic as one record (a JSON array of the
    records `simulate --explain` writes)."""
    topology, metrics = shell.topology, shell.metrics
    encoded = key.encode()
    audit = []
    for outcome in outcomes:
        for action in outcome.actions:
            outbox.send(topology.actions[action["channel"]], encoded, orjson.dumps(action))
            metrics.actions.labels(action["channel"]).inc()
        for record in outcome.audit:
            audit.append(record)
            if record["kind"] == "suppressed":
                metrics.suppressions.labels(record["reason"]).inc()
            elif record["kind"] == "bad_timezone":
                metrics.bad_timezones.inc()
    if audit:
        outbox.send(topology.audit, encoded, orjson.dumps(audit))


def reindex(shell: Shell, done: Step, partition: int) -> None:
    timers = shell.tables.timers
    for timer in done.cancelled:
        timers.pop(timer_key(timer).encode(), None)
    for timer in done.scheduled:
        timers[timer_key(timer).encode()] = encode_timer(timer, partition)
        shell.index.add(timer, partition)


def count(shell: Shell, partition: int, delta: Counter[str]) -> tuple[int, dict[str, int]]:
    """Fold a step's KPI counts into the partition's counters (the `kpis` table); the new absolute values."""
    table = shell.tables.kpis
    changed = {}
    for name, n in delta.items():
        table_key = f"{partition}{kpis.SEP}{name}".encode()
        value = int(table.get(table_key) or 0) + n
        if value:
            table[table_key] = str(value).encode()
        else:
            table.pop(table_key, None)
        changed[name] = value
    return partition, changed


async def process(shell: Shell, outbox: Outbox, item: Item) -> None:
    """One record of one customer: the step, then its state, timers, records and Redis writes (sent with the
    batch's, except a merge's or an erasure's Redis work, which reads Redis: the batch's writes go first)."""
    key = item.customer.encode()
    customers, serving, partition = shell.tables.customers, shell.serving, outbox.partition
    stored = customers.get(key)
    state = None if stored is None else shell.states.take(key, stored)
    late = late_record(state, item)
    done = step(shell.engine, state, item, models=shell.learning)
    if done.skipped:
        return  # a timer of a customer merged away or erased: nothing is pending
    if isinstance(item, Timer) and item.token != VISIT:
        shell.metrics.timer_lateness.observe(max(0.0, time.time() - item.due / 1000))
    if late is not None and not done.outcomes[-1].duplicate:  # a late copy of an event run already changes nothing
        shell.metrics.late.inc()
        done.outcomes[-1].audit.insert(1, late)  # after the event's own record
    encoded = None if done.state is None else encode_state(done.state)
    if encoded is not None and len(encoded) > MAX_STATE_BYTES:  # refused before anything is sent: to the DLQ
        raise Refused(f"the customer's state would grow to {len(encoded):,} bytes (limit {MAX_STATE_BYTES:,})")
    publish(shell, outbox, done.key, done.outcomes)
    tallies = [tally for outcome in done.outcomes for tally in outcome.tallies]
    if tallies:
        occurrences.note(shell, partition, tallies)
    if shell.learning.active:
        for basket in done.baskets:
            outbox.send(shell.topology.baskets, None, encode_basket(partition, basket))
    if encoded is None:
        customers.pop(key, None)  # a tombstone in the changelog
    else:
        customers[key] = encoded
        assert done.state is not None  # encoded from it
        shell.states.put(key, encoded, done.state)
    reindex(shell, done, partition)
    pending = outbox.redis
    pending.count(count(shell, partition, done.kpi_delta))
    # the ordinal of the trail's records: events the customer had after the step (a handed-over state included)
    last = done.state or state
    pending.trail(done.key, Trail(0 if last is None else sum(last.profile["events"].values()), done.trail()))
    if done.forward is not None:  # handed over: the trail moves to the known customer, then the state
        await serving.write(pending)
        await serving.move_trail(done.key, done.forward.customer)
        await serving.erase(done.key, None)  # its summary; its links already point to the known customer
        outbox.send(shell.topology.customers, done.forward.customer.encode(), encode_absorb(done.forward))
    elif done.erased:  # right to erasure: state, timers, Redis
        await serving.write(pending)
        await serving.erase(done.key, None if stored is None else decode_state(stored))
        if isinstance(item, Event) and (forget := fact_of(item, list(item.identifiers))) is not None:
            await shell.history.purge(forget)
    else:
        assert done.state is not None
        pending.summary(done.state, item_time(item))


async def receive(shell: Shell, outbox: Outbox, item: Internal, raw: bytes) -> None:
    """Records of a customer that expects a merge wait for it (see stream/parking.py)."""
    parking = shell.parking
    if isinstance(item, Mark):
        return  # never held: marks are taken in `take`
    if isinstance(item, Expect):
        parking.expect(item)
        return
    if isinstance(item, Absorb) and parking.already_absorbed(item.customer, item.source, item.ts):
        if item.event is None:
            return  # read twice: that merge is in the state already
        # A resend of the merging event (same time and id) made the same merge again: the merge is in, the event
        # runs (as a duplicate), as in `simulate`, where the resend finds the links of the first copy.
        carried = item.event
        item, raw = carried, encode_event(carried)
    waiting = parking.waiting(item.customer)
    if waiting is None:
        await process(shell, outbox, item)
    elif isinstance(item, Absorb) and item.source in waiting:
        if item.event is not None and len(waiting) > 1:  # the event merged several: it runs once all are in
            await process(shell, outbox, replace(item, event=None))
            parking.hold_first(item.customer, encode_event(item.event))
        else:
            await process(shell, outbox, item)
        await release(shell, outbox, parking.arrived(item.customer, item.source))
    elif isinstance(item, Timer):
        shell.index.add(item, outbox.partition)  # fires once the merge is in: the next mark fires it again
    else:
        await release(shell, outbox, parking.hold(item.customer, raw, item.ts))
    if isinstance(item, Absorb):
        parking.absorbed(item.customer, item.source, item.ts)


async def release(shell: Shell, outbox: Outbox, held: list[bytes]) -> None:
    for raw in held:
        try:
            await process(shell, outbox, decode_internal(raw))  # type: ignore[arg-type]  # never an Expect
        except Refused as exc:  # its own record is gone: the reason and the record go to the log
            log.error("held record refused: %s: %s", exc, raw[:1000])


async def guarded(
    shell: Shell, outbox: Outbox, message: Any, offset: int, raw: bytes, item: Internal | None = None,
    held: bool = False,
) -> None:
    """Receive one record (read at `offset` of `message`'s topic; `held`: released from holding, so `message` is
    the mark that released it); one that cannot be applied goes to the DLQ, the others go on."""
    try:
        await receive(shell, outbox, decode_internal(raw) if item is None else item, raw)
    except INFRASTRUCTURE_ERRORS:
        raise
    except Refused as exc:
        await shell.to_dlq(str(exc), message, offset, raw if held else None)
    except Exception as exc:  # a bug must not stop every customer: park the record with the reason
        log.exception("cannot process %s[%s]@%s", message.topic, message.partition, offset)
        await shell.to_dlq(f"internal error: {type(exc).__name__}: {exc}", message, offset, raw if held else None)


# Due timers fire in rounds: at most one round per partition every TIMER_ROUND_SECONDS, each of at most
# TIMER_ROUND_BUDGET seconds. A broadcast's thousands of entries due at one instant then leave the agent time for the
# marks and the live records between rounds (a customer's own due timers still fire before their record:
# engine.fire_due), instead of making them wait for the whole occurrence (bench/broadcast.py).
TIMER_ROUND_SECONDS = 0.1
TIMER_ROUND_BUDGET = 0.02
TIMER_CHUNK = 50


def model_cap(shell: Shell, partition: int) -> float:
    """The latest event time `partition` may run now, as far as the products model is complete (stream/learning.py)."""
    cap = shell.learning.cap(shell.watermarks.coverage(partition))
    return float("inf") if cap is None else cap


async def advance(shell: Shell, outbox: Outbox, message: Any) -> None:
    """A mark came in: release the held records the watermark has passed, in time order, then fire the timers it
    has passed (never past a record still held: its customer's timers would overtake it)."""
    partition = message.partition
    current = shell.watermarks.current(partition)
    if current is None:
        return  # an input partition has not spoken yet
    watermark, before = current
    until = int(min(watermark, model_cap(shell, partition)))
    handed = SimpleNamespace(topic=shell.settings.topic_touchpoints, partition=partition)  # one hop (stream/ingest.py)
    for origin, raw in shell.holding.release(partition, until, before):
        await guarded(shell, outbox, handed if origin.local else message, origin.offset, raw, held=True)
    waiting = shell.holding.next_time(partition)
    timers = shell.tables.timers
    bound = until if waiting is None else min(until, waiting)
    clock = time.monotonic()
    if clock - shell.timer_rounds.get(partition, 0.0) >= TIMER_ROUND_SECONDS:
        shell.timer_rounds[partition] = clock
        deadline = clock + TIMER_ROUND_BUDGET
        while time.monotonic() < deadline and (due := shell.index.pop_due(partition, bound, TIMER_CHUNK)):
            for timer in due:
                if timers.get(timer_key(timer).encode()) is not None:  # else it fired with an event, or moved on
                    await guarded(shell, outbox, message, message.offset, b"", timer)
    # Everything before `frontier` has run here: say so to the model's learners, behind this batch's baskets.
    frontier = min(t for t in (watermark + 1, waiting, shell.index.next_due(partition)) if t is not None)
    recorded = occurrences.complete(shell, outbox, partition, frontier) if shell.occurrences.get(partition) else None
    if recorded:
        outbox.redis.count(count(shell, partition, Counter(recorded)))
    seal = shell.learning.seal(partition, frontier, shell.watermarks.coverage(partition))
    if seal is not None:
        outbox.send(shell.topology.baskets, None, seal)
    shell.metrics.watermark_delay.labels(str(partition)).set(max(0.0, time.time() - watermark / 1000))


async def take(shell: Shell, outbox: Outbox, message: Any) -> None:
    """One record of the customers topic: a mark moves the watermark; events, handovers and expects wait for it;
    absorbs and timer records (the worker's own; fire records of workers before event-time order) go straight on."""
    raw = message.value
    item = decode_internal(raw)
    shell.holding.taken(message.partition, message.offset)
    match item:
        case Mark():
            shell.watermarks.mark(message.partition, item, message.offset)
            await advance(shell, outbox, message)
        case Event():
            shell.holding.hold(message.partition, message.offset, item.ts, item.id, raw)
        case Handover():
            shell.holding.hold(message.partition, message.offset, item.ts, handover_tie(raw), raw)
        case Expect():
            shell.holding.hold(message.partition, message.offset, item.ts, item.tie, raw)
        case Timer() if item.token == VISIT:  # a sweep's visit: in event-time order with the customer's records
            shell.holding.hold(message.partition, message.offset, item.due, VISIT, raw)
        case Absorb() if item.event is not None and item.ts > model_cap(shell, message.partition):
            shell.holding.hold(message.partition, message.offset, item.ts, item.event.id, raw)  # it waits for the model
        case Timer() | Absorb():
            await guarded(shell, outbox, message, message.offset, raw, item)
        case _:
            assert_never(item)


async def run(shell: Shell, stream: faust.StreamT[bytes]) -> None:
    """Own each customer's state: events, timer firings and merges, in event-time order (stream/watermark.py),
    taken in batches (stream/batching.py)."""
    app, settings = shell.app, shell.settings
    async for parts in batches(app, stream, settings.batch_size, settings.batch_wait):
        for events in parts:
            first = events[0].message
            outbox = Outbox(first.partition)
            async with source(app, events), crash_on(INFRASTRUCTURE_ERRORS):
                for event in events:
                    await take(shell, outbox, event.message)
                shell.tables.flush(outbox)
                await send_all(app, first.tp, outbox)
                await shell.serving.write(outbox.redis)
            for event in events:
                shell.done(CUSTOMER, event.message)
