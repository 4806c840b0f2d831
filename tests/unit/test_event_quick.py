"""The quick reading of events (contract/events.py) against pydantic's: it may pass a document on, never differ."""

import copy
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from bench.engine import generate_log
from orchestrator.contract.events import (
    _PROPERTY_SCHEMAS,
    _QUICK_FIELDS,
    Event,
    InvalidEvent,
    TouchpointEvent,
    _quick_event,
    _Unusual,
    event_from_document,
    event_from_model,
)

BASE: dict[str, Any] = {"event_id": "e-1", "type": "page_view", "occurred_at": "2026-03-02T10:00:00Z",
                        "channel": "web", "customer_id": "c-1", "properties": {"path": "/p"}}  # fmt: skip
PROPERTIES: dict[str, dict[str, Any]] = {
    "cart_add": {"sku": "S-1", "price": 10, "quantity": 2, "name": "Bag"},
    "cart_remove": {"sku": "S-1"},
    "purchase": {"order_id": "o-1", "value": 20.5, "store_id": "S-05", "items": [{"sku": "S-1", "price": 1}]},
    "store_visit": {"store_id": "S-05"},
    "consent_update": {"channel": "email", "granted": True},
    "coupon_redeemed": {"code": "AB12-CD34-EF56-GH78", "store_id": "S-1", "order_id": "o-1", "value": 3},
    "identify": {"first_name": "Anna", "email": None},
}
ODD_VALUES: list[Any] = [None, "", "x", 0, 1, -1, 1.5, 2.0, -0.0, True, False, [], {}, [1], {"a": None}, "Web",
                         "2026-03-02T10:00:00", 2**60, "ab12-CD34-EF56-GH78", "a\n", "1" * 300]  # fmt: skip
TIMES = ["2026-03-02T10:00:00Z", "2026-03-02T10:00:00.5Z", "2026-03-02T11:00:00+01:00", "2026-03-02 10:00:00Z",
         "2026-W10-1T10:00:00Z", "2026-03-02T10:00Z", "1969-12-31T23:59:59Z", "3000-01-01T00:00:00Z",
         "2026-03-02T10:00:00.000Z", "2026-03-02T10:00:00z", "2026-03-02"]  # fmt: skip


def documents() -> list[dict[str, Any]]:
    """Good events of every built-in type, each with one field (or property) made odd in many ways."""
    docs = []
    for kind, properties in PROPERTIES.items():
        good = {**BASE, "type": kind, "properties": properties}
        docs.append(good)
        for key in [*good, "anonymous_id", "identities", "campaign", "_private", "model_x"]:
            for value in ODD_VALUES:
                docs.append({**good, key: value})
            docs.append({k: v for k, v in good.items() if k != key})
        for key in [*properties, "extra", "quantity", "name", "value"]:
            for value in ODD_VALUES:
                docs.append({**good, "properties": {**properties, key: value}})
            docs.append({**good, "properties": {k: v for k, v in properties.items() if k != key}})
    for at in TIMES:
        docs.append({**BASE, "occurred_at": at})
    for identities in [{"email": "a@b.c"}, {"Email": "x"}, {"email": ""}, {"email": 1}, {}, None, {"e" * 51: "x"}]:
        docs.append({**BASE, "customer_id": None, "identities": identities})
        docs.append({key: value for key, value in BASE.items() if key != "customer_id"} | {"identities": identities})
    deep: Any = "leaf"
    for _ in range(70):
        deep = [deep]
    docs += [{**BASE, "nested": deep}, {**BASE, "properties": {"nested": deep}}]
    return docs


def pydantic_reading(document: dict[str, Any]) -> Event | str:
    try:
        return event_from_model(TouchpointEvent.model_validate(copy.deepcopy(document)))
    except ValidationError as exc:
        return f"refused: {exc.error_count()}"


def same(quick: Event, slow: Event) -> bool:
    """Equal, keys in the same order too (actions and audit records are written as JSON)."""
    return quick == slow and orjson.dumps(quick.data) == orjson.dumps(slow.data)


def test_the_quick_reading_gives_pydantics_event_or_passes_the_document_on() -> None:
    vouched = 0
    for document in documents():
        try:
            quick = _quick_event(copy.deepcopy(document))
        except _Unusual:
            continue
        slow = pydantic_reading(document)
        assert isinstance(slow, Event) and same(quick, slow), document
        vouched += 1
    assert vouched > 400


def test_the_bench_log_is_read_quickly_and_alike() -> None:
    for document in generate_log(300, 3000, 7, 2, 200):
        assert same(_quick_event(copy.deepcopy(document)), event_from_model(TouchpointEvent.model_validate(document)))


@pytest.mark.parametrize("kind", sorted(_PROPERTY_SCHEMAS))
def test_the_quick_schemas_have_the_models_fields_in_order(kind: str) -> None:
    assert [name for name, _, _ in _QUICK_FIELDS[kind]] == list(_PROPERTY_SCHEMAS[kind].model_fields)


def test_a_refused_document_keeps_pydantics_reason() -> None:
    document = {**BASE, "type": "cart_add", "properties": {"sku": "S-1", "price": "cheap"}}
    with pytest.raises(InvalidEvent, match="cart_add properties: price"):
        event_from_document(document)
