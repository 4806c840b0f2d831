"""The worker's side of the Redis serving layer: identity graph, customer summaries, coupons.

Every write is a single pipelined round trip and idempotent (a replay after a crash rewrites the
same values), and every call retries with back-off while Redis is down: the worker stalls rather
than guess who a customer is or lose a write.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import orjson
from redis import exceptions as redis_errors
from redis.asyncio import Redis

from orchestrator.engine import CustomerState
from orchestrator.serving.keys import COUPON_GRACE_SECONDS, MERGE_MEMORY_SECONDS, SAFE_TRAITS, Keys
from orchestrator.timefmt import format_ms, parse_rfc3339, to_ms

log = logging.getLogger("orchestrator.redis")
T = TypeVar("T")
RETRYABLE = (redis_errors.ConnectionError, redis_errors.TimeoutError, redis_errors.BusyLoadingError, OSError)
MAX_BACKOFF = 5.0


async def retrying(what: str, call: Callable[[], Awaitable[T]]) -> T:
    """Call until it succeeds, backing off to 5 s: the partition waits, nothing is skipped."""
    delay = 0.05
    while True:
        try:
            return await call()
        except RETRYABLE as exc:
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
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def lookup(self, identifiers: list[str], event_id: str = "") -> tuple[dict[str, str], list[str]]:
        """The graph's entries for these identifiers, and the merges this event made before (one MGET)."""
        if not identifiers:
            return {}, []

        async def mget() -> list[bytes | str | None]:
            return await self.redis.mget([self.keys.identifier(i) for i in identifiers] + [self.keys.merge(event_id)])

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

    async def publish(self, state: CustomerState, now: int) -> None:
        """The customer's summary and every coupon it holds, as the state says (the state is the truth)."""

        async def write() -> None:
            pipe = self.redis.pipeline(transaction=False)
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
        """Everything Redis holds about a customer: summary, coupons, identity links (the graph and its set)."""

        async def write() -> None:
            members = await self.redis.smembers(self.keys.identifiers_of(customer))
            identifiers = {m.decode() if isinstance(m, bytes) else m for m in members}
            if state is not None:
                identifiers |= set(state.identifiers)
            current, _ = await self.lookup(sorted(identifiers))
            pipe = self.redis.pipeline(transaction=False)
            pipe.delete(self.keys.customer(customer), self.keys.identifiers_of(customer))
            for identifier, owner in current.items():
                if owner == customer:
                    pipe.delete(self.keys.identifier(identifier))
            for code in state.profile.get("offers", {}) if state is not None else {}:
                pipe.delete(self.keys.coupon(code))
            await pipe.execute()

        await retrying("erasure", write)
