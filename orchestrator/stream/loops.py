"""The worker's periodic work: send the watermark marks (timers fire and held records are released when the
customer agent takes them: faust tables are written only inside a stream), rebuild the timer index and the held
records' order after a rebalance, announce the journeys' step order, measure the consumer lag."""

from __future__ import annotations

import asyncio
import logging

import faust
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from orchestrator.engine.affinity import model_version
from orchestrator.engine.broadcast import VISIT
from orchestrator.engine.identity import is_anonymous
from orchestrator.engine.state import Timer
from orchestrator.measurement.maps import journey_maps
from orchestrator.serving.keys import MODEL_LIST_LIMIT
from orchestrator.stream import ingest, occurrences
from orchestrator.stream.records import decode_timer, encode_mark, encode_timer
from orchestrator.stream.shell import Shell

log = logging.getLogger("orchestrator.worker")
LAG_INTERVAL = 5.0  # seconds between consumer-lag measurements (one ListOffsets request)
SERVED = MODEL_LIST_LIMIT  # neighbours per item written to Redis for the API (its largest `top`)


def owned_partitions(app: faust.App, topic: str) -> set[int]:
    return {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == topic}


async def rebuild_holding(shell: Shell) -> None:
    """After a rebalance: the order of the records the owned partitions hold, from the `held` table. The seals this
    worker remembers sending are forgotten too: one may have been in a transaction the rebalance aborted, and the
    records that made it, read again, would make the same seal, which `Learning.seal` would not send twice. So are
    the marks of the partitions taken back (`Watermarks.rebalanced`)."""
    owned = owned_partitions(shell.app, shell.settings.topic_customers)
    shell.learning.sent.clear()
    shell.watermarks.rebalanced(owned)
    shell.states.clear()  # (never stale, but the partitions gone need not stay in memory)
    held = shell.holding.rebuild(owned)
    occurrences.rebuild(shell, owned)  # broadcasts counted, their record not written yet
    log.info("held records rebuilt: %d waiting for the watermark on partitions %s", held, sorted(owned))


async def rebuild_index(shell: Shell) -> None:
    """After a rebalance: the due times of the owned partitions' pending timers, from the `timers` table."""
    owned = owned_partitions(shell.app, shell.settings.topic_customers)
    entries = []
    for value in shell.topology.timer_table.values():
        timer, partition = decode_timer(value)
        if partition in owned:
            entries.append((timer, partition))
    shell.index.rebuild(entries)
    log.info("timer index rebuilt: %d pending timers on partitions %s", len(entries), sorted(owned))


async def announce_journeys(shell: Shell) -> None:
    """The funnels' step order, the journey maps and the partition count, for the dashboard and the KPIs the API
    serves."""
    await shell.serving.write_step_order(shell.engine.step_order())
    await shell.serving.write_maps(journey_maps(shell.engine.latest))
    await shell.serving.write_partitions(shell.partitions.customers)
    await shell.serving.write_segments(sorted(shell.engine.segments))


class LagMeter:
    """Records not yet processed (end offset minus committed offset) per owned partition of the inputs."""

    def __init__(self, shell: Shell) -> None:
        self.shell = shell
        self.labelled: set[tuple[str, int]] = set()

    async def measure(self) -> None:
        shell = self.shell
        inputs = (shell.settings.topic_touchpoints, shell.settings.topic_customers)
        owned = [tp for tp in shell.app.assigned() if tp.topic in inputs]
        try:
            ends = await shell.app.end_offsets(owned)
        except KafkaError:
            return
        now = {(tp.topic, tp.partition) for tp in owned}
        for topic, partition in self.labelled - now:
            shell.metrics.lag.remove(topic, str(partition))
        self.labelled = now
        for tp in owned:
            shell.metrics.lag.labels(tp.topic, str(tp.partition)).set(max(0, ends[tp] - shell.app.committed_offset(tp)))


async def send_marks(shell: Shell) -> None:
    """Release what the input watermark allows (stream/ingest.py, `tick`), then tell every customers partition how
    far (event time) each owned input partition is released and committed
    (stream/watermark.py). Marks go through the plain (idempotent) producer, never a transaction: they speak only
    of committed input, so they land behind the records they speak for. A lost mark costs a tick; a repeated
    one changes nothing."""
    app, settings = shell.app, shell.settings
    await ingest.tick(shell)
    if app.rebalancing:
        return
    sends = []
    for partition, mark in shell.progress.marks(shell.partitions.customers):
        try:
            sends.append(await app.producer.send(settings.topic_customers, None, encode_mark(mark), partition, None,
                                                 None))  # fmt: skip
        except Exception:
            log.warning("cannot send a watermark mark; next tick", exc_info=True)
            return
    for result in await asyncio.gather(*sends, return_exceptions=True):
        if isinstance(result, BaseException):
            log.warning("watermark mark not acknowledged (%s); next tick", result)
            return


async def publish_model(shell: Shell) -> None:
    """A new version of the complementary-products model: the changed items' neighbours and the best sellers to
    Redis, for `GET /v1/products/{sku}/complementary`. Every worker learns the same model, so any may write."""
    models = shell.learning.models
    snapshot = models.current
    await shell.serving.write_model(model_version(snapshot.version), snapshot.lists(models.changed(), SERVED),
                                    snapshot.best_sellers(2 * SERVED + 1))  # a fill never runs short  # fmt: skip


def log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("the sweep for deployed scheduled journeys stopped; the next rebalance or start does it again",
                    exc_info=task.exception())


async def sweep(shell: Shell) -> None:
    """After a rebalance: visit every known customer stored on an owned partition that has not been swept for the
    scheduled journeys deployed now (`Engine.deployed`). A visit is a timer record to the customer, due at the
    latest deploy: held until the watermark passes it like any record, its step plans the customer for each new
    journey as of its deploy (`Engine.catch_up`), as `simulate --deploy` plans every known customer. A customer with
    an event first is planned by that step; visits are idempotent, so a sweep cut short by a crash or a rebalance is
    simply done again. Keys are read from the table as it iterates (RocksDB: never all in memory)."""
    engine = shell.engine
    if not engine.deployed:
        return
    deploys = sorted(f"{jid}@{engine.latest[jid].spec.version}@{at}" for jid, at in engine.deployed.items())
    owned = owned_partitions(shell.app, shell.settings.topic_customers)
    todo = {p for p in owned if await shell.serving.swept(p) != deploys}
    if not todo:
        return
    due, journey = max((at, jid) for jid, at in engine.deployed.items())
    table, partitions = shell.tables.customers, shell.partitions.customers
    keys = list(table.keys()) if shell.settings.store.startswith("memory") else table.keys()
    producer = AIOKafkaProducer(bootstrap_servers=shell.settings.kafka_bootstrap_servers, acks="all",
                                linger_ms=20, enable_idempotence=True)  # fmt: skip
    await producer.start()
    visited = 0
    try:
        for number, raw in enumerate(keys):
            key = raw.decode() if isinstance(raw, bytes) else str(raw)
            partition = ingest.partition_of(key.encode(), partitions)
            if partition in todo and not is_anonymous(key):
                visit = Timer(due, key, journey, VISIT)
                await producer.send(shell.settings.topic_customers, encode_timer(visit, partition), key=key.encode())
                visited += 1
            if number % 1000 == 999:
                await asyncio.sleep(0)  # the agents run meanwhile
        await producer.flush()
    finally:
        await producer.stop()
    for partition in sorted(todo):
        await shell.serving.mark_swept(partition, deploys)
    log.info("swept partitions %s for %s: %d customers visited", sorted(todo), ", ".join(deploys), visited)
