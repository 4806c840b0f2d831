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
from orchestrator.engine.runner import Record
from orchestrator.serving.connect import RedisClient, get_many, unavailable
from orchestrator.serving.keys import COUPON_GRACE_SECONDS, MERGE_MEMORY_SECONDS, SAFE_TRAITS, TRAIL_LIMIT, Keys
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

    async def lookup(self, identifiers: list[str], event_id: str = "") -> tuple[dict[str, str], list[str]]:
        """The graph's entries for these identifiers, and the merges this event made before (one MGET)."""
        if not identifiers:
            return {}, []

        keys = [self.keys.identifier(i) for i in identifiers] + [self.keys.merge(event_id)]

        async def mget() -> list[bytes | str | None]:
            return await get_many(self.redis, keys)

        *values, merged = await retrying("identity lookup", mget)
        found = zip(identifiers, values, strict=True)
        graph = {i: v.decode() if isinstance(v, bytes) else v for i, v in found if v is not None}
        return graph, orjson.loads(merged) if merged is not None else []

    async def link(
        self, links: Mapping[str, str], previous: Mapping[str, str], event_id: str = "", merges: Sequence[str] = ()
    ) -> None:
        """Point identifiers at their customer; keep each customer's identifier set in step; remember merges."""
        if not links:
            return

        async def write() -> None:
            pipe = self.redis.pipeline(transaction=False)
            for identifier, customer in links.items():
                pipe.set(self.keys.identifier(identifier), customer)
                pipe.sadd(self.keys.identifiers_of(customer), identifier)
                if identifier in previous and previous[identifier] != customer:
                    pipe.srem(self.keys.identifiers_of(previous[identifier]), identifier)
            if merges:
                pipe.set(self.keys.merge(event_id), orjson.dumps(merges), ex=MERGE_MEMORY_SECONDS)
            await pipe.execute()

        await retrying("identity link", write)

    def stage(self, pipe: Any, customer: str, trail: Trail, kpis: KpiCounts | None) -> None:
        """Audit records onto the customer's trail and the partition's KPI counts as absolute values. A replay
        after a crash writes the same members and the same numbers: nothing changes."""
        if trail.records:
            members = {
                b"%010d.%05d " % (trail.ordinal, rank) + orjson.dumps(record): now
                for rank, (now, record) in enumerate(trail.records)
            }
            key = self.keys.audit(customer)
            pipe.zadd(key, members)
            pipe.zremrangebyrank(key, 0, -TRAIL_LIMIT - 1)
        if kpis is not None:
            partition, counts = kpis
            present = {name: n for name, n in counts.items() if n}
            if present:
                pipe.hset(self.keys.kpis(partition), mapping=present)
            gone = [name for name, n in counts.items() if not n]
            if gone:
                pipe.hdel(self.keys.kpis(partition), *gone)

    async def record(self, customer: str, trail: Trail, kpis: KpiCounts | None = None) -> None:
        """Audit trail and KPI counts alone (for a customer with no summary: handed over or erased)."""

        async def write() -> None:
            pipe = self.redis.pipeline(transaction=False)
            self.stage(pipe, customer, trail, kpis)
            await pipe.execute()

        await retrying("audit write", write)

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

        async def write() -> None:
            pipe = self.redis.pipeline(transaction=False)
            self.stage(pipe, state.key, trail or Trail(0, []), kpis)
            pipe.set(self.keys.customer(state.key), orjson.dumps(summary(state, now)))
            for code, offer in state.profile.get("offers", {}).items():
                expires = to_ms(parse_rfc3339(offer["expires_at"]))
                ttl = (expires - now) // 1000 + COUPON_GRACE_SECONDS
                if ttl > 0:
                    record = {"code": code, "customer": state.key, **offer}
                    pipe.set(self.keys.coupon(code), orjson.dumps(record), ex=ttl)
            await pipe.execute()

        await retrying("summary write", write)

    async def erase(self, customer: str, state: CustomerState | None) -> None:
        """Everything Redis holds about a customer: summary, coupons, audit trail, identity links (graph and set)."""

        async def write() -> None:
            members = await self.redis.smembers(self.keys.identifiers_of(customer))
            identifiers = {m.decode() if isinstance(m, bytes) else m for m in members}
            if state is not None:
                identifiers |= set(state.identifiers)
            current, _ = await self.lookup(sorted(identifiers))
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


async def read_kpis(redis: RedisClient, keys: Keys) -> Counter[str]:
    """The worker's KPI counts summed over every partition's hash (SCAN: on a cluster, redis-py scans every
    primary)."""
    totals: Counter[str] = Counter()
    async for name in redis.scan_iter(match=keys.kpis("*"), count=1000):
        for field, value in (await redis.hgetall(name)).items():
            totals[field.decode() if isinstance(field, bytes) else field] += int(value)
    return totals
