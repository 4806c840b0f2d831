"""The Faust app: topics, tables and agents around the engine.

Data flow:  touchpoints --ingest--> <app>.customers --customer agent--> actions.<channel>, journeys.audit
                  \\--(bad input)--> touchpoints.dlq        ^ timer loop (fire records, same partition)

The ingest agent validates, resolves the customer on the Redis identity graph and re-keys by customer
key, so producers may key events any way (or not at all); merges travel as handover/absorb records.
The customer agent owns per-customer state in the `customers` table, the pending timers in the
`timers` table, the records held during a merge in the `parked` table (stream/parking.py) and the KPI
counters in the `kpis` table (orchestrator/kpis.py), all changelog-backed, and refreshes Redis (summary, audit
trail, KPI counters); metrics: stream/metrics.py; the timer loop only sends "fire" records, once the
input is ingested up to the timer's due time, and the agent that owns the customer applies them (Faust
tables are written only inside a stream). Exactly-once: stream/eos.py.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import faust
import orjson
from aiokafka.errors import KafkaError
from faust.exceptions import ProducerSendError

from orchestrator import kpis
from orchestrator.contract.events import Event
from orchestrator.engine import CustomerState, Engine, Outcome, Timer
from orchestrator.engine.identity import conflict_records, event_identifiers, resolve_event
from orchestrator.engine.runner import event_audit
from orchestrator.serving.connect import connect_redis
from orchestrator.serving.keys import Keys
from orchestrator.serving.redis import Serving, Trail
from orchestrator.settings import Settings
from orchestrator.stream.eos import OrchestratorApp, stop_now
from orchestrator.stream.metrics import Metrics
from orchestrator.stream.parking import Parking
from orchestrator.stream.records import (
    INPUT_MAX_MESSAGE_BYTES,
    MAX_RECORD_BYTES,
    MAX_STATE_BYTES,
    Absorb,
    Expect,
    Handover,
    Refused,
    Rejected,
    accept,
    decode_internal,
    decode_state,
    decode_timer,
    dlq_record,
    encode_absorb,
    encode_event,
    encode_expect,
    encode_handover,
    encode_state,
    encode_timer,
)  # fmt: skip
from orchestrator.stream.timers import InputWatermark, TimerIndex, timer_key

log = logging.getLogger("orchestrator.worker")
# Failures of the infrastructure, not of the record: they never send a record to the DLQ.
INFRASTRUCTURE_ERRORS: tuple[type[BaseException], ...] = (KafkaError, ProducerSendError)
# Each input makes several records (re-key, action, audit, changelogs): let the producer batch them for 5 ms
# instead of one request each (bench/stream.py: about +25 % events/s, a third less broker CPU per event).
PRODUCER_LINGER_S = 0.005
LAG_INTERVAL = 5.0  # seconds between consumer-lag measurements (one ListOffsets request)
INGEST, CUSTOMER = "ingest", "customer"  # the agents, as metrics label them


def create_app(settings: Settings, engine: Engine) -> OrchestratorApp:
    """Build the app for these settings and this engine; nothing is read from globals."""
    app = OrchestratorApp(
        settings.app_id,
        broker=[f"kafka://{server}" for server in settings.kafka_bootstrap_servers.split(",")],
        store=settings.store,
        datadir=str(settings.data_dir),
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication,
        processing_guarantee=settings.processing_guarantee,
        consumer_auto_offset_reset="earliest",
        consumer_max_fetch_size=INPUT_MAX_MESSAGE_BYTES + 65_536,  # never below the largest input (docs/overload.md)
        broker_max_poll_records=settings.max_poll_records,
        stream_buffer_maxsize=settings.stream_buffer,
        web_enabled=settings.web_enabled,
        web_port=settings.web_port,
        key_serializer="raw",
        value_serializer="raw",
        producer_linger=PRODUCER_LINGER_S,
        producer_max_request_size=MAX_RECORD_BYTES + 65_536,
        broker_commit_interval=settings.commit_interval,
        broker_session_timeout=settings.session_timeout,
    )

    partitions = settings.topic_partitions

    def raw_topic(name: str) -> faust.TopicT:
        return app.topic(name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")

    touchpoints = raw_topic(settings.topic_touchpoints)
    dlq = raw_topic(settings.topic_dlq)
    audit = raw_topic(settings.topic_audit)
    customer_topic = raw_topic(settings.topic_customers)
    actions = {channel: raw_topic(settings.actions_topic(channel)) for channel in engine.channels}

    # Values are our own bytes (orjson of the engine's state): Faust never guesses a codec.
    def table(name: str) -> Any:
        configs = {"max.message.bytes": str(MAX_RECORD_BYTES), "min.cleanable.dirty.ratio": "0.1",
                   "segment.ms": str(settings.changelog_segment_seconds * 1000)}  # fmt: skip
        return app.Table(name, default=None, key_type=bytes, value_type=bytes, partitions=partitions,
                         extra_topic_configs=configs)  # fmt: skip

    customers, timers, parking = table("customers"), table("timers"), Parking(table("parked"))
    kpi_table = table("kpis")  # `<partition>SEP<kpi key>` -> count: orchestrator/kpis.py, per customers partition
    index = TimerIndex()
    metrics = app.metrics = Metrics()
    metrics.track_timers(lambda: len(index))
    watermark = InputWatermark(app, settings.topic_touchpoints)

    async def to_dlq(reason: str, message: Any) -> None:
        log.info("to DLQ: %s (%s[%s]@%s)", reason, message.topic, message.partition, message.offset)
        metrics.dlq.inc()
        await dlq.send(
            key=message.key,
            value=dlq_record(reason, topic=message.topic, partition=message.partition, offset=message.offset,
                             timestamp_ms=message.timestamp and int(message.timestamp * 1000),
                             key=message.key, value=message.value),
        )  # fmt: skip

    redis = connect_redis(settings.redis_url, socket_timeout=5, socket_connect_timeout=5)
    serving = Serving(redis, Keys(settings.redis_prefix))
    identity_secret = settings.identity_secret.get_secret_value().encode()

    async def ingest_one(message: Any) -> None:
        result = accept(message.value, settings.max_event_bytes)
        if isinstance(result, Rejected):
            await to_dlq(result.reason, message)
            return
        identifiers = event_identifiers(result, identity_secret)
        graph, merged_before = await serving.lookup(identifiers, result.id)
        resolution, resolved = resolve_event(result, identifiers, graph)
        # A replay after a crash finds its links already written: the merges it made are remembered in Redis.
        merges = resolution.merges or merged_before
        await serving.link(resolution.links, graph, result.id, merges)
        conflicts = conflict_records(resolution, resolved.data["occurred_at"])
        for record in conflicts:
            log.warning("identity conflict (not merged): %s", record)
            await audit.send(key=resolved.customer.encode(), value=orjson.dumps(record))
        if conflicts:
            await serving.record(resolved.customer, Trail(0, [(resolved.ts, record) for record in conflicts]))
        if not merges:
            await customer_topic.send(key=resolved.customer.encode(), value=encode_event(resolved))
            return
        # The anonymous state lives on another partition: it hands itself over, then the event runs. Meanwhile
        # the known customer holds its records, so its later events run after the merge.
        expect = encode_expect(resolved.customer, merges, resolved.ts)
        await customer_topic.send(key=resolved.customer.encode(), value=expect)
        for index_, anonymous in enumerate(merges):
            carried = resolved if index_ == len(merges) - 1 else None
            await customer_topic.send(
                key=anonymous.encode(), value=encode_handover(anonymous, resolved.customer, resolved.ts, carried)
            )

    @app.agent(touchpoints)
    async def ingest(stream: faust.StreamT[bytes]) -> None:
        """Validate, resolve who the customer is (Redis graph), re-key onto the customer's partition."""
        async for event in stream.events():
            if not await app.in_order(event.message):
                continue
            async with app.processing(event), crash_on(INFRASTRUCTURE_ERRORS):
                await ingest_one(event.message)
            watermark.processed(event.message.partition, event.message.offset, event.message.timestamp)
            done(INGEST, event.message)

    def done(agent: str, message: Any) -> None:
        metrics.events.labels(agent, "processed").inc()
        if message.timestamp:
            metrics.latency.labels(agent).observe(max(0.0, time.time() - message.timestamp))

    async def publish(key: str, outcomes: list[Outcome]) -> None:
        """Actions to `actions.<channel>`, decisions to the audit topic (the records `simulate --explain` writes)."""
        for outcome in outcomes:
            for action in outcome.actions:
                await actions[action["channel"]].send(key=key.encode(), value=orjson.dumps(action))
                metrics.actions.labels(action["channel"]).inc()
            for record in outcome.audit:
                await audit.send(key=key.encode(), value=orjson.dumps(record))
                if record["kind"] == "suppressed":
                    metrics.suppressions.labels(record["reason"]).inc()

    def reindex(before: dict[str, Timer], state: CustomerState, partition: int, gone: bool = False) -> None:
        after = {} if gone else {t.token: t for t in state.pending_timers()}
        for token in before.keys() - after.keys():
            timers.pop(timer_key(before[token]).encode(), None)
        for token in after.keys() - before.keys():
            timer = after[token]
            timers[timer_key(timer).encode()] = encode_timer(timer, partition)
            index.add(timer, partition)

    async def receive(raw: bytes, partition: int) -> None:
        """Records of a customer that expects a merge wait for it (see stream/parking.py)."""
        item = decode_internal(raw)
        if isinstance(item, Expect):
            parking.expect(item)
            return
        if isinstance(item, Absorb) and parking.already_absorbed(item.customer, item.source, item.ts):
            return  # read twice: that merge is in the state already
        waiting = parking.waiting(item.customer)
        if waiting is None:
            await process(item, partition)
        elif isinstance(item, Absorb) and item.source in waiting:
            await process(item, partition)
            await release(parking.arrived(item.customer, item.source), partition)
        elif isinstance(item, Timer):
            index.add(item, partition)  # fires once the merge is in: the loop sends it again next tick
        else:
            await release(parking.hold(item.customer, raw, item.ts), partition)
        if isinstance(item, Absorb):
            parking.absorbed(item.customer, item.source, item.ts)

    async def release(held: list[bytes], partition: int) -> None:
        for raw in held:
            try:
                await process(decode_internal(raw), partition)  # type: ignore[arg-type]  # never an Expect
            except Refused as exc:  # its own record is gone: the reason and the record go to the log
                log.error("held record refused: %s: %s", exc, raw[:1000])

    def count(partition: int, delta: Counter[str]) -> tuple[int, dict[str, int]]:
        """Fold a step's KPI counts into the partition's counters (the `kpis` table); the new absolute values."""
        changed = {}
        for name, n in delta.items():
            table_key = f"{partition}{kpis.SEP}{name}".encode()
            value = int(kpi_table.get(table_key) or 0) + n
            if value:
                kpi_table[table_key] = str(value).encode()
            else:
                kpi_table.pop(table_key, None)
            changed[name] = value
        return partition, changed

    def trail(state: CustomerState, outcomes: list[Outcome]) -> Trail:
        records = [(outcome.now, record) for outcome in outcomes for record in outcome.audit]
        return Trail(sum(state.profile["events"].values()), records)

    async def process(item: Event | Timer | Handover | Absorb, partition: int) -> None:
        key = item.customer.encode()
        stored = customers.get(key)
        if isinstance(item, Timer) and stored is None:
            return  # a late fire record of a customer merged away or erased: nothing is pending
        state = decode_state(stored) if stored else CustomerState(item.customer)
        before = {t.token: t for t in state.pending_timers()}
        counted = kpis.contribution(state.profile) if stored else Counter[str]()
        if isinstance(item, Timer):
            outcomes = engine.fire_due(state, item.due)
            now = item.due
            metrics.timer_lateness.observe(max(0.0, time.time() - item.due / 1000))
        else:
            now = item.ts
            outcomes = engine.fire_due(state, now)
            if isinstance(item, Handover):  # this anonymous customer turned out to be `item.to`: move over
                await publish(item.customer, outcomes)
                customers.pop(key, None)  # emptied: a tombstone in the changelog
                reindex(before, state, partition, gone=True)
                steps = trail(state, outcomes)
                await serving.record(item.customer, steps, count(partition, kpis.change(counted, None, steps.records)))
                await serving.move_trail(item.customer, item.to)
                await serving.erase(item.customer, None)  # its summary; its links already point to `to`
                forward = encode_absorb(item.to, item.customer, state if stored else None, now, item.event)
                await customer_topic.send(key=item.to.encode(), value=forward)
                return
            if isinstance(item, Absorb) and item.state is not None:
                outcomes.append(engine.absorb(state, CustomerState.from_dict(item.state), now))
            event = item if isinstance(item, Event) else item.event
            if event is not None:
                outcome = engine.on_event(state, event, now)
                outcome.audit.insert(0, event_audit(event, outcome.duplicate))  # as `simulate --explain` has it
                outcomes.append(outcome)
        if outcomes and outcomes[-1].erased:  # right to erasure: state, timers, Redis; tombstones in changelogs
            await publish(state.key, outcomes)
            customers.pop(key, None)
            reindex(before, state, partition, gone=True)
            changed = count(partition, kpis.change(counted, None, trail(state, outcomes).records))
            await serving.record(state.key, Trail(0, []), changed)
            await serving.erase(state.key, decode_state(stored) if stored else None)
            return
        encoded = encode_state(state)
        if len(encoded) > MAX_STATE_BYTES:  # refused before anything is sent: the record goes to the DLQ
            raise Refused(f"the customer's state would grow to {len(encoded):,} bytes (limit {MAX_STATE_BYTES:,})")
        await publish(state.key, outcomes)
        customers[key] = encoded
        reindex(before, state, partition)
        steps = trail(state, outcomes)
        await serving.publish(state, now, steps, count(partition, kpis.change(counted, state.profile, steps.records)))

    @app.agent(customer_topic)
    async def customer(stream: faust.StreamT[bytes]) -> None:
        """Own each customer's state: events, timer firings and merges, in partition order."""
        async for event in stream.events():
            message = event.message
            if not await app.in_order(message):
                continue
            async with app.processing(event), crash_on(INFRASTRUCTURE_ERRORS):
                try:
                    await receive(event.value, message.partition)
                except INFRASTRUCTURE_ERRORS:
                    raise
                except Refused as exc:
                    await to_dlq(str(exc), message)
                except Exception as exc:  # a bug must not stop every customer: park the record with the reason
                    log.exception("cannot process %s[%s]@%s", message.topic, message.partition, message.offset)
                    await to_dlq(f"internal error: {type(exc).__name__}: {exc}", message)
            done(CUSTOMER, message)

    @asynccontextmanager
    async def crash_on(errors: tuple[type[BaseException], ...]) -> AsyncIterator[None]:
        """Kafka failing mid-event: the event's records may be half sent, and faust would acknowledge it anyway
        and restart the agent past it. Stop at once instead: the open transactions abort, a restart reprocesses."""
        try:
            yield
        except errors as exc:
            stop_now(f"Kafka failed while processing an event: {exc!r}")

    @timers.on_recover
    async def rebuild_index() -> None:
        owned = _owned_partitions(app, settings.topic_customers)
        entries = []
        for value in timers.values():
            timer, partition = decode_timer(value)
            if partition in owned:
                entries.append((timer, partition))
        index.rebuild(entries)
        log.info("timer index rebuilt: %d pending timers on partitions %s", len(entries), sorted(owned))

    @app.task
    async def announce_journeys() -> None:
        """The funnels' step order, for the dashboard the API serves."""
        await serving.write_step_order(engine.step_order())

    lagging: set[tuple[str, int]] = set()

    @app.timer(interval=LAG_INTERVAL)
    async def measure_lag() -> None:
        """Records not yet processed (end offset minus committed offset) per owned partition of the inputs."""
        inputs = (settings.topic_touchpoints, settings.topic_customers)
        owned = [tp for tp in app.assigned() if tp.topic in inputs]
        try:
            ends = await app.end_offsets(owned)
        except KafkaError:
            return
        now = {(tp.topic, tp.partition) for tp in owned}
        for topic, partition in lagging - now:
            metrics.lag.remove(topic, str(partition))
        lagging.clear()
        lagging.update(now)
        for tp in owned:
            metrics.lag.labels(tp.topic, str(tp.partition)).set(max(0, ends[tp] - app.committed_offset(tp)))

    @app.timer(interval=settings.timer_interval)
    async def fire_timers() -> None:
        """Wake the owners of due timers. Fire records go through the plain (idempotent) producer, never a
        transaction: outside any event they would join whatever transaction is open on that partition.
        A repeated or lost fire record is harmless: the engine ignores stale tokens, the customer's next
        event fires its due timers, and the index is rebuilt from the `timers` table on recovery."""
        if app.rebalancing:
            return
        owned = _owned_partitions(app, settings.topic_customers)
        now = int(time.time() * 1000)
        ingested: dict[int, int] = {}
        sent = []
        for timer, partition in index.pop_due(now):
            if partition not in owned or timers.get(timer_key(timer).encode()) is None:
                continue  # another worker owns it now, or it already fired
            if partition not in ingested:
                ingested[partition] = await watermark.until(partition, now)
            if timer.due > ingested[partition]:  # input events before its due time are still on their way
                index.add(timer, partition)
                continue
            key, value = timer.customer.encode(), encode_timer(timer, partition)
            try:
                acked = await app.producer.send(settings.topic_customers, key, value, partition, None, None)
            except Exception:
                log.warning("cannot send the fire record of %s; retrying next tick", timer, exc_info=True)
                index.add(timer, partition)
                continue
            sent.append((timer, partition, acked))
        results = await asyncio.gather(*(acked for _, _, acked in sent), return_exceptions=True)
        for (timer, partition, _), result in zip(sent, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("fire record of %s not acknowledged (%s); retrying next tick", timer, result)
                index.add(timer, partition)

    return app


def _owned_partitions(app: faust.App, topic: str) -> set[int]:
    return {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == topic}
