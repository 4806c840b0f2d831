"""The worker on a real broker: journeys fire, timers survive crashes and rebalances, bad input goes to the DLQ."""

from __future__ import annotations

import signal
import time
from collections import Counter
from typing import Any

import orjson
import pytest

from orchestrator.timefmt import parse_rfc3339, to_ms
from tests.integration.conftest import JOURNEYS, Stack, at
from tests.integration.oracle import by_id, expected_actions, oracle, per_customer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
CHANNELS = ["email", "push", "instore"]


def ev(
    event_id: str, type_: str, occurred_at: str, customer: str, channel: str = "web", **props: Any
) -> dict[str, Any]:
    return {"event_id": event_id, "type": type_, "occurred_at": occurred_at, "channel": channel,
            "customer_id": customer, "properties": props}  # fmt: skip


def test_journeys_fire_on_the_real_stack_as_simulate_says(stack: Stack) -> None:
    stack.start_worker()
    t = at(0)
    events = [
        ev("a1", "cart_add", t, "c-cart", sku="S1", price=12.5),  # abandoned cart: email at +4 s, push at +7 s
        ev("b1", "cart_add", t, "c-buyer", sku="S2", price=10),
        ev("b2", "purchase", at(1), "c-buyer", channel="app", order_id="o-1", value=10),  # in time: cancels
        ev("s1", "cart_add", t, "c-store", channel="app", sku="S3", price=80),  # web-to-store, then into a store
        ev("s2", "store_visit", at(2), "c-store", channel="store", store_id="milano"),
        ev("s3", "purchase", at(3), "c-store", channel="store", order_id="o-2", value=72),
    ]
    stack.produce(events)  # keyed by customer, as `orchestrator send` does: one customer's events stay in order
    stack.produce([ev("x1", "cart_add", t, "c-unkeyed", sku="S4", price=1)], key=None)
    stack.produce([ev("x2", "cart_add", t, "c-miskeyed", sku="S5", price=1)], key=b"c-someone-else")
    events += [
        ev("x1", "cart_add", t, "c-unkeyed", sku="S4", price=1),
        ev("x2", "cart_add", t, "c-miskeyed", sku="S5", price=1),
    ]
    expected = expected_actions(JOURNEYS, events)
    assert {(a["customer_id"], a["template"]) for a in expected} == {
        ("c-cart", "cart-reminder"), ("c-cart", "cart-last-call"), ("c-store", "store-coupon"),
        ("c-unkeyed", "cart-reminder"), ("c-unkeyed", "cart-last-call"),  # the worker re-keys them
        ("c-miskeyed", "cart-reminder"), ("c-miskeyed", "cart-last-call"),
    }  # fmt: skip

    got = stack.actions(CHANNELS, until=len(expected), timeout=60)
    assert Counter(a["action_id"] for a in got) == Counter(a["action_id"] for a in expected), (got, expected)
    assert by_id(got) == by_id(expected)  # every field, coupon code included
    coupon = by_id(got)[next(a["action_id"] for a in expected if a["template"] == "store-coupon")]["coupon"]
    assert coupon["discount_percent"] == 10 and len(coupon["code"]) == 19
    # Timers fire within a second of their due time while the worker is up (the record's time is when it was sent).
    for _, value, sent_ms in stack.timed_records(stack.actions_topic("push")):
        late_ms = sent_ms - to_ms(parse_rfc3339(orjson.loads(value or b"{}")["at"]))
        assert 0 <= late_ms < 1000, late_ms
    # Every decision is on the audit topic, as `simulate --audit` writes it, customer by customer.
    decisions = oracle(JOURNEYS, events).audit
    audited = stack.consume([stack.env["ORCH_TOPIC_AUDIT"]], until=len(decisions), timeout=30)
    assert per_customer(audited) == per_customer(decisions)


@pytest.mark.parametrize("store", ["memory://", "rocksdb://"])
def test_pending_timers_fire_once_after_a_sigkill(stack: Stack, store: str) -> None:
    stack.env["ORCH_STORE"] = store  # memory:// replays the changelog; rocksdb:// keeps a local copy too
    worker = stack.start_worker()
    t = at(0)
    events = [ev(f"k{i}", "cart_add", t, f"c-{i}", sku="S", price=5) for i in range(20)]
    stack.produce(events)
    stack.wait_for_log("w1", "timer index rebuilt")  # (already there) and let the worker take the events
    time.sleep(3)  # events processed and committed, timers (due at +4 s and +7 s) still pending
    stack.stop(worker, signal.SIGKILL)
    time.sleep(5)  # the first timers fall due while no worker runs
    stack.start_worker()
    expected = expected_actions(JOURNEYS, events)
    assert len(expected) == 40
    got = stack.actions(CHANNELS, until=40, timeout=120)
    assert Counter(a["action_id"] for a in got) == Counter(a["action_id"] for a in expected)  # none lost, none twice
    assert by_id(got) == by_id(expected)

    # The recovered state is intact: read the customers table's changelog as any new worker would.
    states = {r["key"]: r for r in stack.consume([f"{stack.env['ORCH_APP_ID']}-customers-changelog"], until=20)}
    assert set(states) == {f"c-{i}" for i in range(20)}
    profile = states["c-3"]["profile"]
    assert profile["cart"] == [{"sku": "S", "price": 5.0, "quantity": 1}] and profile["events"] == {"cart_add": 1}
    assert states["c-3"]["runs"] == {} and states["c-3"]["history"]["abandoned-cart"][0] == 1


def test_at_least_once_publishes_the_same_actions_and_commits_its_offsets(stack: Stack) -> None:
    stack.env["ORCH_PROCESSING_GUARANTEE"] = "at_least_once"  # no transactions: faust's plain offset commits
    worker = stack.start_worker()
    events = [ev(f"l{i}", "cart_add", at(0), f"c-{i}", sku="S", price=5) for i in range(12)]
    stack.produce(events)
    expected = expected_actions(JOURNEYS, events)
    got = stack.actions(CHANNELS, until=len(expected), timeout=60)
    assert Counter(a["action_id"] for a in got) == Counter(a["action_id"] for a in expected)
    stack.stop(worker)  # SIGTERM: a graceful stop commits what was processed
    committed, ends = stack.committed_and_end(stack.topic("touchpoints"))
    assert committed == ends and sum(ends.values()) == len(events), (committed, ends)


def test_a_surviving_worker_takes_over_customers_and_timers(stack: Stack) -> None:
    stack.start_worker("w1")
    w2 = stack.start_worker("w2")
    stack.wait_for_log("w1", "timer index rebuilt", count=2)  # w1 rebalanced to share with w2
    t = at(0)
    events = [ev(f"r{i}", "cart_add", t, f"c-{i}", sku="S", price=40) for i in range(40)]  # both journeys
    stack.produce(events)
    time.sleep(2)
    assert "partitions [0, 1, 2, 3]" not in stack.log("w2").split("timer index rebuilt")[-1][:80]
    stack.stop(w2)  # w2's customers and their pending timers move to w1
    expected = expected_actions(JOURNEYS, events)
    got = stack.actions(CHANNELS, until=len(expected), timeout=90)
    assert Counter(a["action_id"] for a in got) == Counter(a["action_id"] for a in expected)
    assert "partitions [0, 1, 2, 3]" in stack.log("w1")


def test_bad_input_goes_to_the_dlq_and_the_worker_keeps_going(stack: Stack) -> None:
    stack.start_worker()
    t = at(0)
    good = ev("g1", "cart_add", t, "c-good", sku="S", price=5)
    huge = orjson.dumps(ev("h1", "cart_add", t, "c-huge", sku="S", price=5, blob="x" * (5 * 1024 * 1024)))
    bad: list[bytes | dict[str, Any]] = [
        b"this is not json",
        {"event_id": "m1", "type": "cart_add", "channel": "web", "customer_id": "c-x"},  # no occurred_at
        huge,
        ev("u1", "page_view", t, "c-x", channel="Web Shop!"),
    ]
    stack.produce([*bad, good])
    dead = stack.consume([stack.topic("dlq")], until=4, timeout=60)
    reasons = sorted(d["reason"] for d in dead)
    assert len(dead) == 4
    assert any(r.startswith("not JSON") for r in reasons), reasons
    assert any("occurred_at: missing required field" in r for r in reasons), reasons
    assert any(r.startswith(f"too large: {len(huge):,} bytes") for r in reasons), reasons
    assert any(r.startswith("channel: string should match pattern") for r in reasons), reasons
    large = next(d for d in dead if d["reason"].startswith("too large"))
    assert large["truncated"] and large["size"] == len(huge) and len(large["value"]) == 65_536
    assert all(d["source"]["topic"] == stack.topic("touchpoints") for d in dead)
    assert next(d for d in dead if d["reason"].startswith("not JSON"))["value"] == "this is not json"
    got = stack.actions(CHANNELS, until=2, timeout=60)  # the good neighbour still gets its journey
    assert {a["customer_id"] for a in got} == {"c-good"} and len(got) == 2
