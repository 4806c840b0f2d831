"""One hop: an event keyed by its customer key (as `orchestrator send` keys it) is read on the input partition of
the same number as its customer's partition, and goes straight into that partition's holding, never through the
customers topic; an event keyed otherwise travels, and both reach simulate's actions and states."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from orchestrator.stream.ingest import partition_of
from orchestrator.stream.records import encode_state
from tests.integration.conftest import JOURNEYS, Stack, at
from tests.integration.oracle import by_id, oracle

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
CHANNELS = ["email", "push", "instore"]
PARTITIONS = 4  # the stack's default ORCH_TOPIC_PARTITIONS


LEAD = 8.0  # seconds: the events are dated ahead, so none is read late (late events always travel)


def people() -> list[dict[str, Any]]:
    """Known customers filling carts (reminders at +4 s and +7 s); every third buys in time, every fifth in a store."""
    events = []
    for i in range(24):

        def event(kind: str, seconds: float, channel: str = "web", i: int = i, **properties: Any) -> None:
            events.append({"event_id": f"{kind}-{i}", "type": kind, "occurred_at": at(LEAD + seconds),
                           "channel": channel, "customer_id": f"c-{i}", "properties": properties})  # fmt: skip

        event("cart_add", 0, sku="S1", price=12.5)
        if i % 3 == 0:
            event("purchase", 1, channel="app", order_id=f"o-{i}", value=12.5)
        if i % 5 == 0:
            event("store_visit", 2, channel="store", store_id="milano")
    return sorted(events, key=lambda e: e["occurred_at"])  # produced in time order: none is late (beyond
    # ORCH_MAX_LATENESS behind what its partition, or another, has already read)


def routed(stack: Stack) -> list[dict[str, Any]]:
    """The events that went through the customers topic (not its watermark marks)."""
    values = [orjson.loads(value) for _, value in stack.raw_records(stack.topic("customers")) if value]
    return [value["event"] for value in values if "event" in value]


@pytest.mark.parametrize("keyed_by", ["customer", "event_id"])
def test_an_event_keyed_by_its_customer_takes_one_hop_and_any_key_reaches_the_same_state(
    stack: Stack, keyed_by: str
) -> None:
    events = people()
    stack.start_worker()
    if keyed_by == "customer":
        stack.produce(events)
    else:
        for event in events:
            stack.produce([event], key=event["event_id"].encode())
    expected = oracle(JOURNEYS, events)
    got = stack.actions(CHANNELS, until=len(expected.actions), timeout=90)
    assert by_id(got) == by_id(expected.actions) and len(got) == len(expected.actions)

    # Which events travelled: exactly those read on another partition than their customer's.
    travelled = sorted(e["event_id"] for e in routed(stack))
    key = (lambda e: e["customer_id"]) if keyed_by == "customer" else (lambda e: e["event_id"])
    assert travelled == sorted(e["event_id"] for e in events
                               if partition_of(key(e).encode(), PARTITIONS)
                               != partition_of(e["customer_id"].encode(), PARTITIONS))  # fmt: skip
    assert (travelled == []) == (keyed_by == "customer")

    # The same state for every customer, as simulate's.
    latest = dict(stack.raw_records(f"{stack.env['ORCH_APP_ID']}-customers-changelog"))
    assert {key.decode(): value for key, value in latest.items()} == {
        customer: encode_state(state) for customer, state in expected.states.items()
    }
