"""The worker's periodic work: rebuild the timer index after a rebalance, wake the owners of due timers,
announce the journeys' step order, measure the consumer lag. faust tables are written only inside a stream,
so the timer loop only sends "fire" records; the customer agent that owns the customer applies them."""

from __future__ import annotations

import asyncio
import logging
import time

import faust
from aiokafka.errors import KafkaError

from orchestrator.stream.records import decode_timer, encode_timer
from orchestrator.stream.shell import Shell
from orchestrator.stream.timers import timer_key

log = logging.getLogger("orchestrator.worker")
LAG_INTERVAL = 5.0  # seconds between consumer-lag measurements (one ListOffsets request)


def owned_partitions(app: faust.App, topic: str) -> set[int]:
    return {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == topic}


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
    """The funnels' step order, for the dashboard the API serves."""
    await shell.serving.write_step_order(shell.engine.step_order())


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


async def fire_timers(shell: Shell) -> None:
    """Wake the owners of due timers. Fire records go through the plain (idempotent) producer, never a
    transaction: outside any event they would join whatever transaction is open on that partition.
    A repeated or lost fire record is harmless: the engine ignores stale tokens, the customer's next
    event fires its due timers, and the index is rebuilt from the `timers` table on recovery."""
    app, settings, index = shell.app, shell.settings, shell.index
    if app.rebalancing:
        return
    owned = owned_partitions(app, settings.topic_customers)
    now = int(time.time() * 1000)
    ingested: dict[int, int] = {}
    sent = []
    for timer, partition in index.pop_due(now):
        if partition not in owned or shell.topology.timer_table.get(timer_key(timer).encode()) is None:
            continue  # another worker owns it now, or it already fired
        if partition not in ingested:
            ingested[partition] = await shell.watermark.until(partition, now)
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
