"""The serving layer (`orchestrator.serving.redis`) on the real Redis, every command of it, without Kafka: on the
single Redis and on the three-node Redis Cluster (`any_redis_url`), where the keys of one call lie in different
slots on different nodes. Each test has its own key prefix, deleted after."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import orjson
import pytest

from orchestrator.engine import CustomerState
from orchestrator.serving.connect import RedisClient, connect_redis, get_many
from orchestrator.serving.keys import Keys
from orchestrator.serving.redis import Serving, Trail, find_customer, read_kpis, read_trail
from orchestrator.timefmt import format_ms
from tests.integration.conftest import redis_client

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

NOW = 1_795_000_000_000
SECRET = b"serving-test-secret"


@pytest.fixture
def keys(any_redis_url: str) -> Iterator[Keys]:
    prefix = f"serving-{uuid.uuid4().hex[:10]}:"
    yield Keys(prefix)
    client = redis_client(any_redis_url)
    try:
        stale = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if stale:
            client.delete(*stale)
    finally:
        client.close()


def on_redis(url: str, body: Callable[[RedisClient], Awaitable[None]]) -> None:
    async def go() -> None:
        client = connect_redis(url)
        try:
            await body(client)
        finally:
            await client.aclose()

    asyncio.run(go())


def record(customer: str, n: int) -> tuple[int, dict[str, Any]]:
    return NOW + n, {"customer": customer, "type": "event", "n": n}


def customer_with_coupon(key: str, code: str) -> CustomerState:
    state = CustomerState(key)
    offer = {"journey": "j", "action_id": "a", "discount_percent": 10, "status": "issued",
             "issued_at": format_ms(NOW), "expires_at": format_ms(NOW + 86_400_000)}  # fmt: skip
    state.profile["offers"] = {code: offer}
    state.identifiers = {f"email:{key}": NOW}
    return state


def test_links_and_lookups_of_many_identifiers_at_once(any_redis_url: str, keys: Keys) -> None:
    identifiers = [f"email:h{i}" for i in range(40)]  # spread over every node of a cluster

    async def body(redis: RedisClient) -> None:
        serving = Serving(redis, keys)
        assert await serving.lookup(identifiers) == {}
        await serving.link(dict.fromkeys(identifiers[:30], "c-1"), {})
        graph = await serving.lookup(identifiers)
        assert graph == dict.fromkeys(identifiers[:30], "c-1")
        # five identifiers move to another customer: the sets follow
        await serving.link(dict.fromkeys(identifiers[:5], "c-2"), graph)
        graph = await serving.lookup(identifiers)
        assert graph == {**dict.fromkeys(identifiers[:30], "c-1"), **dict.fromkeys(identifiers[:5], "c-2")}
        assert await redis.smembers(keys.identifiers_of("c-2")) == {i.encode() for i in identifiers[:5]}
        assert len(await redis.smembers(keys.identifiers_of("c-1"))) == 25
        assert await find_customer(redis, keys, "anonymous_id", "nobody", SECRET) is None

    on_redis(any_redis_url, body)


def test_publish_writes_summary_coupons_trail_and_kpis_in_one_round_trip(any_redis_url: str, keys: Keys) -> None:
    async def body(redis: RedisClient) -> None:
        serving = Serving(redis, keys)
        await serving.write_partitions(4)  # the worker says how many KPI hashes there are: no SCAN
        for partition in range(4):
            state = customer_with_coupon(f"c-{partition}", f"CODE-000{partition}")
            trail = Trail(1, [record(state.key, 0), record(state.key, 1)])
            await serving.publish(state, NOW, trail, (partition, {"entered": partition + 1, "gone": 0}))
        summary = orjson.loads(await redis.get(keys.customer("c-2")) or b"{}")
        assert summary["customer_id"] == "c-2" and summary["offers"] == ["CODE-0002"]
        coupons = await get_many(redis, [keys.coupon(f"CODE-000{p}") for p in range(4)] + [keys.coupon("NONE")])
        assert [orjson.loads(c)["customer"] for c in coupons[:4]] == ["c-0", "c-1", "c-2", "c-3"]
        assert coupons[4] is None
        assert [r["n"] for r in await read_trail(redis, keys, "c-3")] == [0, 1]
        assert await read_kpis(redis, keys) == {"entered": 1 + 2 + 3 + 4}
        await redis.hset(keys.kpis(7), mapping={"entered": 100})  # a partition past the count is not read
        assert await read_kpis(redis, keys) == {"entered": 1 + 2 + 3 + 4}

    on_redis(any_redis_url, body)


def test_a_merge_moves_the_trail_keeping_the_earlier_score_and_a_replay_changes_nothing(
    any_redis_url: str, keys: Keys
) -> None:
    async def body(redis: RedisClient) -> None:
        serving = Serving(redis, keys)
        await serving.record("c-known", Trail(0, [record("c-known", 5), record("c-known", 7)]))
        await serving.record("anon:a", Trail(0, [record("anon:a", 1), record("anon:a", 6)]))
        shared = b"0000000000.00000 " + orjson.dumps({"shared": True})  # a member both trails hold
        await redis.zadd(keys.audit("c-known"), {shared: NOW + 9})
        await redis.zadd(keys.audit("anon:a"), {shared: NOW + 3})
        await serving.move_trail("anon:a", "c-known")
        moved = await redis.zrange(keys.audit("c-known"), 0, -1, withscores=True)
        await serving.move_trail("anon:a", "c-known")  # a replay after a crash
        assert await redis.zrange(keys.audit("c-known"), 0, -1, withscores=True) == moved
        assert await redis.exists(keys.audit("anon:a")) == 0
        assert dict(moved)[shared] == NOW + 3  # ZUNIONSTORE ... AGGREGATE MIN, as before
        assert [(r.get("customer"), r.get("n")) for r in await read_trail(redis, keys, "c-known")] == [
            ("anon:a", 1), (None, None), ("c-known", 5), ("anon:a", 6), ("c-known", 7)]  # fmt: skip

    on_redis(any_redis_url, body)


def test_erasure_removes_the_customer_and_only_its_links(any_redis_url: str, keys: Keys) -> None:
    async def body(redis: RedisClient) -> None:
        serving = Serving(redis, keys)
        gone, kept = customer_with_coupon("c-gone", "GONE-0001"), customer_with_coupon("c-kept", "KEPT-0001")
        for state in (gone, kept):
            await serving.publish(state, NOW, Trail(0, [record(state.key, 0)]))
        await serving.link({"email:c-gone": "c-gone", "card:shared": "c-gone", "email:c-kept": "c-kept"}, {})
        await serving.link({"card:shared": "c-kept"}, {"card:shared": "c-gone"})  # moved on since
        await serving.erase("c-gone", gone)
        assert await redis.exists(keys.customer("c-gone"), keys.identifiers_of("c-gone"), keys.audit("c-gone"),
                                  keys.coupon("GONE-0001"), keys.identifier("email:c-gone")) == 0  # fmt: skip
        graph = await serving.lookup(["email:c-gone", "card:shared", "email:c-kept"])
        assert graph == {"card:shared": "c-kept", "email:c-kept": "c-kept"}
        assert await redis.exists(keys.customer("c-kept"), keys.coupon("KEPT-0001"), keys.audit("c-kept")) == 3

    on_redis(any_redis_url, body)
