"""One customer across channels on the real stack: Redis identity graph, merges across partitions, summaries."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest
import redis

from orchestrator.engine.identity import DEV_IDENTITY_SECRET, identifier_key
from tests.integration.conftest import JOURNEYS, Stack, at
from tests.integration.oracle import by_id, expected_actions

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def ev(event_id: str, type_: str, occurred_at: str, channel: str = "web", **fields: Any) -> dict[str, Any]:
    return {"event_id": event_id, "type": type_, "occurred_at": occurred_at, "channel": channel,
            "properties": fields.pop("properties", {}), **fields}  # fmt: skip


def client(stack: Stack) -> redis.Redis:
    return redis.Redis.from_url(stack.env["ORCH_REDIS_URL"])


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
    time.sleep(1)
    assert r.get(f"{prefix}id:{email}") == b"c-2"
    assert r.smembers(f"{prefix}ids:c-1") == set() and r.smembers(f"{prefix}ids:c-2") == {email.encode()}
    assert r.get(f"{prefix}customer:c-1") and r.get(f"{prefix}customer:c-2")
