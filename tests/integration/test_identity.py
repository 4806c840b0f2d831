"""One customer across channels on the real stack: Redis identity graph, merges across partitions, summaries.

Every test runs twice: on the single Redis and on the three-node Redis Cluster (`any_redis_url`).
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import time
from collections import Counter
from typing import Any

import orjson
import pytest
import redis
import redis.cluster

from orchestrator.engine.identity import DEV_IDENTITY_SECRET, identifier_key
from orchestrator.serving.connect import is_cluster_url, parse_cluster_url
from tests.integration.conftest import JOURNEYS, ROOT, Stack, at, redis_client
from tests.integration.oracle import by_id, expected_actions

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def ev(event_id: str, type_: str, occurred_at: str, channel: str = "web", **fields: Any) -> dict[str, Any]:
    return {"event_id": event_id, "type": type_, "occurred_at": occurred_at, "channel": channel,
            "properties": fields.pop("properties", {}), **fields}  # fmt: skip


@pytest.fixture
def redis_url(any_redis_url: str) -> str:
    return any_redis_url


@functools.cache
def _client(url: str) -> redis.Redis | redis.cluster.RedisCluster:
    return redis_client(url)


def client(stack: Stack) -> redis.Redis | redis.cluster.RedisCluster:
    return _client(stack.env["ORCH_REDIS_URL"])


def test_anonymous_cart_login_and_loyalty_card_at_the_till_make_one_customer(stack: Stack) -> None:
    stack.start_worker()
    events = [
        ev("1", "cart_add", at(0), anonymous_id="ck-9", properties={"sku": "S", "price": 40}),
        ev("2", "login", at(1), "app", customer_id="c-42", anonymous_id="ck-9",
           identities={"loyalty_card": "L-77", "email": "Anna@Example.com"}),
        ev("3", "store_visit", at(2), "store", identities={"loyalty_card": "L-77"}, properties={"store_id": "milano"}),
    ]  # fmt: skip
    for event in events:  # one at a time: each is keyed by its own (pre-resolution) identifier
        stack.produce([event])
        time.sleep(1.5)
    expected = expected_actions(JOURNEYS, events)
    # The anonymous cart's runs moved to c-42: the coupon at the till, the reminders under the known customer.
    assert sorted((a["customer_id"], a["template"]) for a in expected) == [
        ("c-42", "cart-last-call"), ("c-42", "cart-reminder"), ("c-42", "store-coupon")]  # fmt: skip
    got = stack.actions(["email", "push", "instore"], until=3, timeout=60, settle=3)
    assert by_id(got) == by_id(expected)

    r, prefix = client(stack), stack.env["ORCH_REDIS_PREFIX"]
    card = identifier_key("loyalty_card", "L-77", DEV_IDENTITY_SECRET)
    assert r.get(f"{prefix}id:{card}") == b"c-42"
    assert r.get(f"{prefix}id:anonymous_id:ck-9") == b"c-42"
    assert r.get(f"{prefix}customer:anon:ck-9") is None  # the anonymous customer was emptied
    summary = orjson.loads(r.get(f"{prefix}customer:c-42") or b"{}")
    assert summary["cart"] == [{"sku": "S", "price": 40.0, "quantity": 1}] and summary["last_store_id"] == "milano"
    code = next(a for a in got if a["template"] == "store-coupon")["coupon"]["code"]
    assert summary["offers"] == [code]
    coupon = orjson.loads(r.get(f"{prefix}coupon:{code}") or b"{}")
    assert coupon["customer"] == "c-42" and coupon["status"] == "issued" and coupon["discount_percent"] == 10
    assert 0 < r.ttl(f"{prefix}coupon:{code}") <= 2 * 86400 + 30 * 86400
    raw = b"".join(r.get(k) or b"" for k in r.scan_iter(f"{prefix}*") if r.type(k) == b"string")
    assert b"Anna@" not in raw and b"anna@example.com" not in raw and b"L-77" not in raw


def test_a_known_known_conflict_moves_the_identifier_and_merges_nothing(stack: Stack) -> None:
    stack.start_worker()
    stack.produce([ev("1", "identify", at(0), customer_id="c-1", identities={"email": "shared@example.com"})])
    time.sleep(1.5)
    stack.produce([ev("2", "identify", at(1), customer_id="c-2", identities={"email": "shared@example.com"})])
    stack.wait_for_log("w1", "identity conflict (not merged)")
    r, prefix = client(stack), stack.env["ORCH_REDIS_PREFIX"]
    email = identifier_key("email", "shared@example.com", DEV_IDENTITY_SECRET)
    deadline = time.monotonic() + 15  # the customer agent runs c-2's event once the watermark has passed it
    while not r.get(f"{prefix}customer:c-2") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert r.get(f"{prefix}id:{email}") == b"c-2"
    assert r.smembers(f"{prefix}ids:c-1") == set() and r.smembers(f"{prefix}ids:c-2") == {email.encode()}
    assert r.get(f"{prefix}customer:c-1") and r.get(f"{prefix}customer:c-2")


def cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from orchestrator.commands.cli import main; main()", *args],
        capture_output=True, text=True, cwd=ROOT, env={**os.environ, **stack.env}, timeout=120,
    )  # fmt: skip


def redis_snapshot(stack: Stack) -> dict[bytes, Any]:
    """Every key of this test's prefix with its value (strings as JSON where they are, sets as sets)."""
    r, found = client(stack), {}
    for key in r.scan_iter(f"{stack.env['ORCH_REDIS_PREFIX']}*"):
        kind = r.type(key)
        if kind == b"set":
            found[key] = r.smembers(key)
        elif kind == b"zset":
            found[key] = r.zrange(key, 0, -1)
        elif kind == b"hash":
            found[key] = r.hgetall(key)
        else:
            value = r.get(key) or b""
            found[key] = orjson.loads(value) if value.startswith(b"{") else value
    return found


ONE_PARTITION = b"till-1"  # the card-only store visit has no customer key: keep it behind its cart


def with_coupon(stack: Stack, customer: str, card: str) -> list[dict[str, Any]]:
    return [
        ev(f"{customer}-1", "cart_add", at(0), customer_id=customer, identities={"loyalty_card": card},
           properties={"sku": "S", "price": 40}),
        ev(f"{customer}-2", "store_visit", at(1), "store", identities={"loyalty_card": card},
           properties={"store_id": "roma"}),
    ]  # fmt: skip


def test_erasure_leaves_nothing_in_redis_or_the_tables(stack: Stack) -> None:
    stack.start_worker()
    stack.produce(with_coupon(stack, "c-gone", "L-1") + with_coupon(stack, "c-kept", "L-2"), key=ONE_PARTITION)
    stack.actions(["instore"], until=2, timeout=60, settle=1)
    time.sleep(1)
    card = identifier_key("loyalty_card", "L-1", DEV_IDENTITY_SECRET)
    assert any(b"c-gone" in key for key in redis_snapshot(stack))
    assert cli(stack, "forget", "--customer", "c-gone").returncode == 0
    deadline = time.monotonic() + 30
    while any(b"c-gone" in key for key in redis_snapshot(stack)) and time.monotonic() < deadline:
        time.sleep(0.5)
    snapshot = redis_snapshot(stack)
    text = repr(snapshot).encode()
    assert b"c-gone" not in text and card.encode() not in text  # scanned, not trusted
    assert any(b"c-kept" in key for key in snapshot)  # the other customer is untouched
    # The tables: the last changelog record of every c-gone key is a tombstone (committed with the erasure's
    # transaction, a moment after Redis was cleaned).
    app = stack.env["ORCH_APP_ID"]
    for table in ("customers", "timers"):
        deadline = time.monotonic() + 10
        while True:
            latest: dict[bytes, bytes | None] = dict(stack.raw_records(f"{app}-{table}-changelog"))
            gone = {k: v for k, v in latest.items() if k.startswith(b"c-gone")}
            if all(v is None for v in gone.values()) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert all(v is None for v in gone.values()), (table, gone)
        if table == "customers":
            assert gone and latest[b"c-kept"] is not None
    # A later event for the same identifier starts a fresh customer.
    stack.produce([ev("after", "page_view", at(2), "store", identities={"loyalty_card": "L-1"})])
    deadline = time.monotonic() + 30
    while not client(stack).get(f"{stack.env['ORCH_REDIS_PREFIX']}id:{card}") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert client(stack).get(f"{stack.env['ORCH_REDIS_PREFIX']}id:{card}") == f"anon:{card}".encode()
    # Erasure by an identifier: the card finds the customer.
    assert cli(stack, "forget", "--identity", "loyalty_card=L-2").returncode == 0
    deadline = time.monotonic() + 30
    while any(b"c-kept" in key for key in redis_snapshot(stack)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert b"c-kept" not in repr(redis_snapshot(stack)).encode()


def test_redis_is_rebuilt_from_kafka_after_a_flush(stack: Stack) -> None:
    worker = stack.start_worker()
    stack.produce(with_coupon(stack, "c-a", "L-a") + with_coupon(stack, "c-b", "L-b"), key=ONE_PARTITION)
    stack.actions(["instore"], until=2, timeout=60, settle=1)
    time.sleep(1.5)
    stack.stop(worker)  # its timers would go on changing the KPI counters between the snapshot and the rebuild
    before = redis_snapshot(stack)
    assert len(before) >= 8
    r = client(stack)
    r.delete(*before)  # this test's part of Redis is gone
    done = cli(stack, "rebuild-serving")
    assert done.returncode == 0 and "rebuilt 2 customer(s) and 2 identifier link(s)" in done.stderr, done.stderr
    assert "KPI counters of" in done.stderr, done.stderr
    trails = {key for key in before if b":audit:" in key}  # from journeys.audit, not rebuilt (docs/identity.md)
    assert trails
    # the funnels' step order, the journey maps and the segment names: configuration, not state; every worker writes
    # them at its start (the KPI hashes' partition count is rebuilt with them)
    order = {key for key in before if key.endswith((b":journeys", b":maps", b":segments"))}
    assert len(order) == 3
    # the identity history: the worker's own, rebuilt as one fact per customer (docs/identity.md)
    history = {key for key in before if b":facts:" in key or b":ingest:" in key}
    assert any(b":ingest:" in key for key in history)
    before = {key: value for key, value in before.items() if key not in trails | order | history}
    after = redis_snapshot(stack)
    rebuilt = {key for key in after if b":facts:" in key}
    prefix = stack.env["ORCH_REDIS_PREFIX"].encode()
    links = {key[len(prefix) + 3 :] for key in after if key.startswith(prefix + b"id:")}
    assert {prefix + b"facts:" + identifier for identifier in links} <= rebuilt
    after = {key: value for key, value in after.items() if key not in rebuilt}
    for value in list(before.values()) + list(after.values()):
        if isinstance(value, dict):
            value.pop("updated_at", None)
    assert after == before


def test_a_redis_restart_during_a_stream_loses_nothing(stack: Stack) -> None:
    stack.start_worker()
    url, script = stack.env["ORCH_REDIS_URL"], str(ROOT / "scripts" / "services")
    if is_cluster_url(url):  # one of the three primaries goes: the keys in its slots cannot be read or written
        port, restart = str(parse_cluster_url(url).nodes[0][1]), [script, "cluster", "up"]
    else:
        port, restart = url.rsplit(":", 1)[1].split("/")[0], [script, "up"]
    first = [
        ev(f"r{i}", "cart_add", at(0), customer_id=f"c-{i}", properties={"sku": "S", "price": 40}) for i in range(10)
    ]
    second = [
        ev(f"s{i}", "cart_add", at(1), customer_id=f"d-{i}", properties={"sku": "S", "price": 40}) for i in range(10)
    ]
    stack.produce(first)
    time.sleep(1)
    subprocess.run(["redis-cli", "-p", port, "shutdown"], check=False, capture_output=True, timeout=30)
    try:
        stack.produce(second)  # the worker cannot resolve these: it must wait, not guess
        deadline = time.monotonic() + 20
        while "Redis unavailable" not in stack.log("w1") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "Redis unavailable" in stack.log("w1")
    finally:  # whatever happened, the next tests get their Redis back
        subprocess.run(restart, check=True, capture_output=True, timeout=120)
    expected = expected_actions(JOURNEYS, first + second)
    got = stack.actions(["email", "push", "instore"], until=len(expected), timeout=120)
    assert Counter(a["action_id"] for a in got) == Counter(a["action_id"] for a in expected)
    deadline = time.monotonic() + 30
    prefix = stack.env["ORCH_REDIS_PREFIX"]
    customers = [f"c-{i}" for i in range(10)] + [f"d-{i}" for i in range(10)]
    while time.monotonic() < deadline and not all(client(stack).get(f"{prefix}customer:{c}") for c in customers):
        time.sleep(0.5)
    assert all(client(stack).get(f"{prefix}customer:{c}") for c in customers)


def test_two_devices_merge_into_the_customer_on_the_real_stack(stack: Stack) -> None:
    stack.start_worker()
    item = {"sku": "S", "price": 5}
    steps = [  # each event is stamped when it is sent: the worker's clock and the oracle's agree
        ("1", "cart_add", "app", {"anonymous_id": "phone-1", "properties": item}),
        ("2", "cart_add", "web", {"anonymous_id": "laptop-1", "properties": item}),
        ("3", "login", "app", {"customer_id": "c-7", "anonymous_id": "phone-1"}),
        ("4", "login", "web", {"customer_id": "c-7", "anonymous_id": "laptop-1"}),
    ]
    events = []
    for event_id, type_, channel, fields in steps:
        events.append(ev(event_id, type_, at(0), channel, **fields))
        stack.produce([events[-1]])
        time.sleep(0.7)
    expected = expected_actions(JOURNEYS, events)
    got = stack.actions(["email", "push", "instore"], until=len(expected), timeout=60, settle=3)
    assert by_id(got) == by_id(expected) and {a["customer_id"] for a in got} == {"c-7"}
    r, prefix = client(stack), stack.env["ORCH_REDIS_PREFIX"]
    summary = orjson.loads(r.get(f"{prefix}customer:c-7") or b"{}")
    assert summary["cart"] == [{"sku": "S", "price": 5.0, "quantity": 2}] and summary["channels"] == ["app", "web"]
    assert r.get(f"{prefix}customer:anon:phone-1") is None and r.get(f"{prefix}customer:anon:laptop-1") is None
    assert r.smembers(f"{prefix}ids:c-7") == {b"anonymous_id:phone-1", b"anonymous_id:laptop-1"}


def test_a_coupon_is_redeemed_once_at_the_till(stack: Stack) -> None:
    stack.start_worker()
    stack.produce(with_coupon(stack, "c-r", "L-r"), key=ONE_PARTITION)
    (action,) = stack.actions(["instore"], until=1, timeout=60, settle=1)
    code = action["coupon"]["code"]
    redeem = {"code": code, "store_id": "roma", "order_id": "o-9"}
    again = {**redeem, "order_id": "o-10"}  # a second use of the same code must change nothing
    stack.produce([ev("x1", "coupon_redeemed", at(3), "store", customer_id="c-r", properties=redeem),
                   ev("x2", "coupon_redeemed", at(4), "store", customer_id="c-r", properties=again)])  # fmt: skip
    r, key = client(stack), f"{stack.env['ORCH_REDIS_PREFIX']}coupon:{code}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and b'"redeemed"' not in (r.get(key) or b""):
        time.sleep(0.5)
    time.sleep(2)  # let the second redemption through too
    coupon = orjson.loads(r.get(key) or b"{}")
    assert coupon["status"] == "redeemed" and coupon["order_id"] == "o-9" and coupon["store_id"] == "roma"
    summary = orjson.loads(r.get(f"{stack.env['ORCH_REDIS_PREFIX']}customer:c-r") or b"{}")
    assert summary["offers"] == []  # no longer an active offer
