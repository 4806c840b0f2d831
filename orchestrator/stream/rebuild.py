"""`orchestrator rebuild-serving`: refill Redis from the worker's tables (their changelogs in Kafka).

Kafka is the source of truth; Redis is an index and a cache. After a Redis flush (or a new Redis),
this reads the compacted `customers` changelog to its end and writes every customer's summary,
coupons and identity links again, and the `kpis` changelog for the KPI counters. An identifier claimed by
two customers goes to the one that saw it last, as the live graph would. The identity history the worker resolves
by (serving/history.py) is written again as one fact per customer, at the last time it saw its identifiers: later
events resolve as before the flush; the history before that moment is not rebuilt (docs/identity.md). The
customers' audit trails (`explain`) are not rebuilt: their source is `journeys.audit`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from orchestrator.engine import CustomerState
from orchestrator.engine.history import Fact
from orchestrator.engine.identity import anonymous_key, is_anonymous
from orchestrator.measurement.kpis import SEP
from orchestrator.serving.connect import connect_redis
from orchestrator.serving.history import History
from orchestrator.serving.keys import Keys
from orchestrator.serving.redis import Serving
from orchestrator.settings import Settings
from orchestrator.stream.client import partitions_of, read_topic
from orchestrator.stream.records import decode_state


async def read_states(settings: Settings) -> dict[str, CustomerState]:
    """The latest state of every customer, as a recovering worker would see it."""
    latest: dict[bytes, bytes | None] = {}
    for record in await read_topic(settings.kafka_bootstrap_servers, settings.changelog_topic("customers")):
        latest[record.key] = record.value
    return {key.decode(): decode_state(value) for key, value in latest.items() if value is not None}


async def write_kpis(settings: Settings) -> int:
    """The KPI counters of every partition, from the `kpis` changelog; returns the number of partitions."""
    latest: dict[bytes, bytes | None] = {}
    for record in await read_topic(settings.kafka_bootstrap_servers, settings.changelog_topic("kpis")):
        latest[record.key] = record.value
    partitions: dict[str, dict[str, int]] = {}
    for key, value in latest.items():
        partition, name = key.decode().split(SEP, 1)
        if value is not None:
            partitions.setdefault(partition, {})[name] = int(value)
    keys = Keys(settings.redis_prefix)
    redis = connect_redis(settings.redis_url)
    count = len(await partitions_of(settings.kafka_bootstrap_servers, settings.topic_customers))
    try:
        for partition, counts in partitions.items():
            await redis.delete(keys.kpis(partition))
            await redis.hset(keys.kpis(partition), mapping=counts)  # type: ignore[arg-type]
        await redis.set(keys.kpi_partitions(), count)  # the API reads hashes 0..count-1 (no scan)
    finally:
        await redis.aclose()
    return len(partitions)


def rebuilt_facts(owners: dict[str, tuple[int, str]]) -> list[Fact]:
    """One fact per customer that makes the graph `owners` describes: a known customer claims its identifiers; an
    anonymous one is named by its own identifier first (the one its key was made from)."""
    claimed: dict[str, list[tuple[int, str]]] = {}
    for identifier, (seen_at, owner) in owners.items():
        claimed.setdefault(owner, []).append((seen_at, identifier))
    facts = []
    for owner, seen in claimed.items():
        identifiers = sorted(identifier for _, identifier in seen)
        if is_anonymous(owner):
            identifiers.sort(key=lambda identifier: anonymous_key(identifier) != owner)
        at, customer_id = max(ts for ts, _ in seen), None if is_anonymous(owner) else owner
        facts.append(Fact(at, "", customer_id, tuple(identifiers)))
    return facts


async def write_serving(
    settings: Settings, states: dict[str, CustomerState], progress: Callable[[int], None] = lambda n: None
) -> int:
    """Write every customer's summary, coupons and identifier links; returns the number of links."""
    owners: dict[str, tuple[int, str]] = {}
    for state in states.values():
        for identifier, seen_at in state.identifiers.items():
            if identifier not in owners or seen_at > owners[identifier][0]:
                owners[identifier] = (seen_at, state.key)
    redis = connect_redis(settings.redis_url)
    serving = Serving(redis, Keys(settings.redis_prefix))
    now = int(time.time() * 1000)
    try:
        for state in states.values():
            await serving.publish(state, now)
            progress(1)
        await serving.link({identifier: owner for identifier, (_, owner) in owners.items()}, {})
        await History(redis, settings.redis_prefix).add(rebuilt_facts(owners))
    finally:
        await redis.aclose()
    return len(owners)
