"""Event-time order across a person's identifiers on the real broker: whatever key and input partition a person's
events come through, and however far one partition lags the others, the worker publishes simulate's actions."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from tests.integration.conftest import JOURNEYS, Stack, at
from tests.integration.oracle import expected_actions

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
CHANNELS = ["email", "push", "instore"]
PEOPLE = 40
LOGINS, CARTS, STORE, TILL = 0, 1, 2, 3  # the input partition each kind of record is produced to


def people(base: datetime) -> list[tuple[int, dict[str, Any]]]:
    """(input partition, event) for people who sign in (customer id, cookie, loyalty card), then fill a web cart
    under the cookie; some then walk into a store (seen by the loyalty card), some pay at the till (card too)."""
    log = []
    for i in range(PEOPLE):
        def event(kind: str, seconds: float, channel: str, i: int = i, **fields: Any) -> dict[str, Any]:
            return {"event_id": f"{kind}-{i}", "type": kind, "occurred_at": at(seconds, base), "channel": channel,
                    "properties": fields.pop("properties", {}), **fields}  # fmt: skip

        card = {"identities": {"loyalty_card": f"L-{i}"}}
        log.append((LOGINS, event("login", 0, "app", customer_id=f"c-{i}", anonymous_id=f"ck-{i}", **card)))
        log.append((CARTS, event("cart_add", 1 + i / 100, "web", anonymous_id=f"ck-{i}",
                                 properties={"sku": "SNK-42", "price": 40})))  # fmt: skip
        if i % 2 == 0:
            log.append((STORE, event("store_visit", 2 + i / 100, "store", properties={"store_id": "milano"}, **card)))
        if i % 3 == 0:
            log.append((TILL, event("purchase", 3 + i / 100, "pos", **card,
                                    properties={"order_id": f"o-{i}", "value": 40})))  # fmt: skip
    return log


def key(event: dict[str, Any]) -> bytes:
    """The identifier the channel knows: the cookie on the web, the card in the store, the customer id in the app."""
    if "customer_id" in event:
        return event["customer_id"].encode()
    if "anonymous_id" in event:
        return event["anonymous_id"].encode()
    return event["identities"]["loyalty_card"].encode()


def produce(stack: Stack, records: list[tuple[int, dict[str, Any]]]) -> None:
    async def go() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap)
        await producer.start()
        try:
            sent = [await producer.send(stack.topic("touchpoints"), orjson.dumps(e), key=key(e), partition=p)
                    for p, e in records]  # fmt: skip
            await asyncio.gather(*sent)
        finally:
            await producer.stop()

    asyncio.run(go())


def check(stack: Stack, log: list[tuple[int, dict[str, Any]]]) -> None:
    expected = expected_actions(JOURNEYS, [event for _, event in log])
    kinds = Counter(a["template"] for a in expected)
    assert kinds["store-coupon"] == len(range(0, PEOPLE, 2))  # the visit comes before the purchase: a coupon each
    got = stack.actions(CHANNELS, until=len(expected), timeout=120, settle=5)
    assert Counter(a["action_id"] for a in got) == Counter(a["action_id"] for a in expected), (
        sorted((a["customer_id"], a["template"]) for a in got),
        sorted((a["customer_id"], a["template"]) for a in expected),
    )


def test_a_person_under_three_keys_with_one_partition_held_back_gets_simulates_actions(stack: Stack) -> None:
    """The web carts' partition lags 5 s behind the store and the till: the store visit and the purchase (keyed
    by the loyalty card) must still run after the cart (keyed by the cookie) that happened before them."""
    stack.start_worker()
    log = people(datetime.now(UTC) + timedelta(seconds=12))  # dated ahead: the lag is a live one
    produce(stack, [r for r in log if r[0] == LOGINS])
    time.sleep(3)  # signed in: every identifier of a person resolves to one customer from now on
    produce(stack, [r for r in log if r[0] in (STORE, TILL)])
    time.sleep(5)
    produce(stack, [r for r in log if r[0] == CARTS])
    check(stack, log)


def test_a_backfill_of_a_log_dated_weeks_ago_gets_simulates_actions(stack: Stack) -> None:
    """Last month's log replayed at once: every timer is long due, yet each fires only after the events that
    happened before it, whichever partition they came through."""
    stack.start_worker()
    log = people(datetime.now(UTC) - timedelta(days=20))
    produce(stack, [r for r in log if r[0] == LOGINS])
    time.sleep(3)
    produce(stack, sorted((r for r in log if r[0] != LOGINS), key=lambda r: r[1]["occurred_at"]))
    check(stack, log)
