"""The worker's side of the Redis serving layer: identity graph, customer summaries, coupons.

Every write is a single pipelined round trip (a merge's trail: a read, then one) and idempotent (a replay
after a crash rewrites the same values), and every call retries with back-off while Redis is down: the worker
stalls rather than guess who a customer is or lose a write. Every command names one key, so the same code runs
on a Redis Cluster (serving/connect.py): a pipeline is not a transaction, its commands may go to several nodes.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import orjson

from orchestrator.engine import CustomerState
from orchestrator.engine.identity import ANONYMOUS_ID, identifier_key
from orchestrator.engine.outcome import Record
from orchestrator.serving.connect import RedisClient, get_many, unavailable
from orchestrator.serving.keys import (
    COUPON_GRACE_SECONDS,
    MODEL_LIST_LIMIT,
    SAFE_TRAITS,
    TRAIL_LIMIT,
    Keys,
)
from orchestrator.timefmt import format_ms, parse_rfc3339, to_ms

log = logging.getLogger("orchestrator.redis")
T = TypeVar("T")
MAX_BACKOFF = 5.0
KpiCounts = tuple[int, Mapping[str, int]]  # a partition and the absolute values of its changed KPI counts


@dataclass(frozen=True, slots=True)
class Trail:
    """One step's audit records with their times (ms). The ordinal (events the customer had after the step)
    orders the steps that share a millisecond, as the engine ran them: ZSET members that tie on the score sort
    by their bytes, and each member starts with `<ordinal>.<rank>`."""

    ordinal: int
    records: Sequence[tuple[int, Record]]


class Pending:
    """Redis writes waiting for the end of a batch, coalesced where a later value replaces an earlier one: the
    last summary of each customer, the last KPI counts of each partition; every identity link and trail record."""

    def __init__(self) -> None:
        self.links: list[tuple[Mapping[str, str], Mapping[str, str]]] = []
        self.trails: list[tuple[str, Trail]] = []
        self.kpis: dict[int, dict[str, int]] = {}
        self.summaries: dict[str, tuple[CustomerState, int]] = {}

    def __bool__(self) -> bool:
        return bool(self.links or self.trails or self.kpis or self.summaries)

    def link(self, links: Mapping[str, str], previous: Mapping[str, str]) -> None:
        if links:
            self.links.append((links, previous))

    def trail(self, customer: str, trail: Trail) -> None:
        if trail.records:
            self.trails.append((customer, trail))

    def count(self, kpis: KpiCounts | None) -> None:
        if kpis is not None and kpis[1]:
            self.kpis.setdefault(kpis[0], {}).update(kpis[1])

    def summary(self, state: CustomerState, now: int) -> None:
        self.summaries[state.key] = (state, now)

    def clear(self) -> None:
        self.links, self.trails, self.kpis, self.summaries = [], [], {}, {}


async def retrying(what: str, call: Callable[[], Awaitable[T]]) -> T:
    """Call until it succeeds, backing off to 5 s: the partition waits, nothing is skipped."""
    delay = 0.05
    while True:
        try:
            return await call()
        except Exception as exc:
            if not unavailable(exc):
                raise
            log.warning("Redis unavailable during %s (%s); retrying in %.2f s", what, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF)


def active_offers(profile: dict[str, Any], now: int) -> list[str]:
    at = format_ms(now)
    return sorted(code for code, offer in profile.get("offers", {}).items()
                  if offer["status"] == "issued" and offer["expires_at"] > at)  # fmt: skip


def summary(state: CustomerState, now: int) -> dict[str, Any]:
    """What stores and senders may see of a customer: no raw email, phone or address."""
    profile = state.profile
    return {
        "customer_id": state.key,
        "traits": {name: profile["traits"][name] for name in SAFE_TRAITS if name in profile["traits"]},
        "lifetime_value": profile["lifetime_value"],
        "orders": profile["orders"],
        "last_store_id": profile.get("last_store_id"),
        "last_channel": profile.get("last_channel"),
        "last_seen_at": profile.get("last_seen_at"),
        "cart": profile["cart"],
        "cart_value": profile["cart_value"],
        "consent": profile["consent"],
        "channels": profile["channels"],
        "offers": active_offers(profile, now),
        "updated_at": format_ms(now),
    }


class Serving:
    def __init__(self, redis: RedisClient, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def write_step_order(self, order: dict[str, list[str]]) -> None:
        await retrying("journeys write", lambda: self.redis.set(self.keys.journeys(), orjson.dumps(order)))

    async def write_maps(self, maps: dict[str, dict[str, Any]]) -> None:
        await retrying("maps write", lambda: self.redis.set(self.keys.maps(), orjson.dumps(maps)))

    async def write_segments(self, names: list[str]) -> None:
        await retrying("segments write", lambda: self.redis.set(self.keys.segments(), orjson.dumps(names)))

    async def swept(self, partition: int) -> list[str] | None:
        raw = await self.redis.get(self.keys.swept(partition))
        return None if raw is None else cast(list[str], orjson.loads(raw))

    async def mark_swept(self, partition: int, deploys: list[str]) -> None:
        await retrying("sweep mark", lambda: self.redis.set(self.keys.swept(partition), orjson.dumps(deploys)))

    async def write_partitions(self, partitions: int) -> None:
        """How many `{p}kpis:<partition>` hashes there are: the API reads them without scanning."""
        await retrying("partitions write", lambda: self.redis.set(self.keys.kpi_partitions(), partitions))

    async def lookup(self, identifiers: Sequence[str]) -> dict[str, str]:
        """The graph's current entries for these identifiers (one MGET): what the API and erasure read. Ingest
        resolves on the identity history instead (serving/history.py), as of each event's time."""
        if not identifiers:
            return {}
        keys = [self.keys.identifier(i) for i in identifiers]

        async def mget() -> list[bytes | str | None]:
            return await get_many(self.redis, keys)

        found = await retrying("identity lookup", mget)
        return {i: v.decode() if isinstance(v, bytes) else v for i, v in zip(identifiers, found, strict=True) if v}

    async def link(self, links: Mapping[str, str], previous: Mapping[str, str]) -> None:
        """Point identifiers at their customer; keep each customer's identifier set in step."""
        pending = Pending()
        pending.link(links, previous)
        await self.write(pending)

    async def write(self, pending: Pending) -> None:
        """A batch's writes (`Pending`), in one round trip."""
        if not pending:
            return

        async def write() -> None:
            pipe = self.redis.pipeline(transaction=False)
            self.stage(pipe, pending)
            await pipe.execute()

        await retrying("redis write", write)
        pending.clear()

    def stage(self, pipe: Any, pending: Pending) -> None:
        """Identity links; audit records onto each customer's trail; the partitions' KPI counts as absolute values;
        summaries and coupons. A replay after a crash writes the same members and the same numbers: nothing
        changes."""
        keys = self.keys
        for links, previous in pending.links:
            for identifier, customer in links.items():
                pipe.set(keys.identifier(identifier), customer)
                pipe.sadd(keys.identifiers_of(customer), identifier)
                if identifier in previous and previous[identifier] != customer:
                    pipe.srem(keys.identifiers_of(previous[identifier]), identifier)
        members: dict[str, dict[bytes, int]] = {}  # one ZADD per customer
        for customer, trail in pending.trails:
            mine = members.setdefault(customer, {})
            for rank, (now, record) in enumerate(trail.records):
                mine[b"%010d.%05d " % (trail.ordinal, rank) + orjson.dumps(record)] = now
        for customer, mine in members.items():
            pipe.zadd(keys.audit(customer), mine)
            pipe.zremrangebyrank(keys.audit(customer), 0, -TRAIL_LIMIT - 1)
        for partition, counts in pending.kpis.items():
            present = {name: n for name, n in counts.items() if n}
            if present:
                pipe.hset(keys.kpis(partition), mapping=present)
            gone = [name for name, n in counts.items() if not n]
            if gone:
                pipe.hdel(keys.kpis(partition), *gone)
        for state, now in pending.summaries.values():
            pipe.set(keys.customer(state.key), orjson.dumps(summary(state, now)))
            for code, offer in state.profile.get("offers", {}).items():
                expires = to_ms(parse_rfc3339(offer["expires_at"]))
                ttl = (expires - now) // 1000 + COUPON_GRACE_SECONDS
                if ttl > 0:
                    record = {"code": code, "customer": state.key, **offer}
                    pipe.set(keys.coupon(code), orjson.dumps(record), ex=ttl)

    async def write_model(
        self, version: str, lists: Mapping[str, Sequence[Mapping[str, Any]]], popular: Sequence[Mapping[str, Any]]
    ) -> None:
        """A model version: the neighbours of the items in `lists` (an empty list deletes the item's key), the best
        sellers, then the version, in one round trip; entries as `{"sku", "score"}`, at most `MODEL_LIST_LIMIT`.
        Not atomic (one key a command, as on a cluster): a read meanwhile may see some lists of the new version and
        some of the old one, each of them whole. Idempotent: a retry writes the same values."""

        def entries(found: Sequence[Mapping[str, Any]]) -> bytes:
            return orjson.dumps([{"sku": e["sku"], "score": e["score"]} for e in found[:MODEL_LIST_LIMIT]])

        async def write() -> None:
            pipe = self.redis.pipeline(transaction=False)
            for sku, found in lists.items():
                if found:
                    pipe.set(self.keys.model_neighbours(sku), entries(found))
                else:
                    pipe.delete(self.keys.model_neighbours(sku))
            pipe.set(self.keys.model_popular(), entries(popular))
            pipe.set(self.keys.model_version(), version)
            await pipe.execute()

        await retrying("model write", write)

    async def record(self, customer: str, trail: Trail, kpis: KpiCounts | None = None) -> None:
        """Audit trail and KPI counts alone (for a customer with no summary: handed over or erased)."""
        pending = Pending()
        pending.trail(customer, trail)
        pending.count(kpis)
        await self.write(pending)

    async def move_trail(self, source: str, target: str) -> None:
        """A merge: the anonymous customer's timeline becomes part of the known customer's (idempotent). Read, then
        written with ZADD LT (a member both hold keeps the lower score: ZUNIONSTORE's MIN without its two keys in
        one command, which a cluster refuses when they are in different slots), then the source deleted: a crash in
        between moves the same members again. Only the source's own agent writes the source's trail meanwhile."""

        async def write() -> None:
            source_key, target_key = self.keys.audit(source), self.keys.audit(target)
            members = cast(list[tuple[bytes, float]], await self.redis.zrange(source_key, 0, -1, withscores=True))
            pipe = self.redis.pipeline(transaction=False)
            if members:
                pipe.zadd(target_key, dict(members), lt=True)
                pipe.zremrangebyrank(target_key, 0, -TRAIL_LIMIT - 1)
            pipe.delete(source_key)
            await pipe.execute()

        await retrying("audit merge", write)

    async def publish(
        self, state: CustomerState, now: int, trail: Trail | None = None, kpis: KpiCounts | None = None
    ) -> None:
        """The customer's summary and every coupon it holds, as the state says (the state is the truth), with the
        audit trail and KPI counts of the change, in one round trip."""
        pending = Pending()
        pending.summary(state, now)
        if trail is not None:
            pending.trail(state.key, trail)
        pending.count(kpis)
        await self.write(pending)

    async def erase(self, customer: str, state: CustomerState | None) -> None:
        """Everything Redis holds about a customer: summary, coupons, audit trail, identity links (graph and set).
        The identity history is serving/history.py's (`History.purge`)."""

        async def write() -> None:
            members = await self.redis.smembers(self.keys.identifiers_of(customer))
            identifiers = {m.decode() if isinstance(m, bytes) else m for m in members}
            if state is not None:
                identifiers |= set(state.identifiers)
            current = await self.lookup(sorted(identifiers))
            pipe = self.redis.pipeline(transaction=False)
            for key in (self.keys.customer(customer), self.keys.identifiers_of(customer), self.keys.audit(customer)):
                pipe.delete(key)  # one key a command: the three are in different slots on a cluster
            for identifier, owner in current.items():
                if owner == customer:
                    pipe.delete(self.keys.identifier(identifier))
            for code in state.profile.get("offers", {}) if state is not None else {}:
                pipe.delete(self.keys.coupon(code))
            await pipe.execute()

        await retrying("erasure", write)


# ------------------------------------------------------------------ reads (explain, the API)


def graph_identifier(kind: str, value: str, secret: bytes) -> str:
    """The graph's identifier key, as the worker builds it (`orchestrator.engine.identity.event_identifiers`)."""
    if kind == ANONYMOUS_ID:
        return f"{ANONYMOUS_ID}:{value}"
    return identifier_key(kind, value, secret)


async def find_customer(redis: RedisClient, keys: Keys, kind: str, value: str, secret: bytes) -> str | None:
    """Who an identifier belongs to now (one GET); a `customer_id` is its own key."""
    if kind == "customer_id":
        return value
    found = await redis.get(keys.identifier(graph_identifier(kind, value, secret)))
    return found.decode() if isinstance(found, bytes) else found


async def read_trail(redis: RedisClient, keys: Keys, customer: str, limit: int = TRAIL_LIMIT) -> list[Record]:
    """The customer's newest `limit` audit records, oldest first (one ZRANGE)."""
    members = cast(list[bytes], await redis.zrange(keys.audit(customer), -limit, -1))
    return [orjson.loads(member.partition(b" ")[2]) for member in members]


async def read_step_order(redis: RedisClient, keys: Keys) -> dict[str, list[str]]:
    """The funnels' step order the worker wrote at its start (empty before any worker ran)."""
    raw = await redis.get(keys.journeys())
    return {} if raw is None else cast(dict[str, list[str]], orjson.loads(raw))


async def read_segment_names(redis: RedisClient, keys: Keys) -> list[str]:
    """The segments the worker runs with (empty before any worker ran)."""
    raw = await redis.get(keys.segments())
    return [] if raw is None else cast(list[str], orjson.loads(raw))


async def read_maps(redis: RedisClient, keys: Keys) -> dict[str, dict[str, Any]]:
    """The journey maps the worker wrote at its start (empty before any worker ran)."""
    raw = await redis.get(keys.maps())
    return {} if raw is None else cast(dict[str, dict[str, Any]], orjson.loads(raw))


async def read_partition_kpis(redis: RedisClient, keys: Keys) -> dict[int, Counter[str]]:
    """Each customers partition's KPI counts, by partition number: the hashes `0 .. {p}kpis:partitions - 1` the
    worker writes (no scan of the keyspace, which holds every customer's keys)."""
    raw = await redis.get(keys.kpi_partitions())
    partitions = int(raw) if raw is not None else 0
    found: dict[int, Counter[str]] = {}
    for partition in range(partitions):
        fields = await redis.hgetall(keys.kpis(partition))
        found[partition] = Counter({(f.decode() if isinstance(f, bytes) else f): int(v) for f, v in fields.items()})
    return found


async def read_kpis(redis: RedisClient, keys: Keys) -> Counter[str]:
    """The worker's KPI counts summed over every partition."""
    totals: Counter[str] = Counter()
    for counts in (await read_partition_kpis(redis, keys)).values():
        totals.update(counts)
    return totals


async def read_model(redis: RedisClient, keys: Keys, sku: str) -> tuple[str | None, bytes | None, bytes | None]:
    """The model's version (None: never written), the item's neighbours and the best sellers as stored (JSON), in
    one MGET (on a cluster one per slot)."""
    version, neighbours, popular = await get_many(
        redis, [keys.model_version(), keys.model_neighbours(sku), keys.model_popular()]
    )
    return (version.decode() if isinstance(version, bytes) else version), neighbours, popular
