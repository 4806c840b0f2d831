"""`simulate` on the same events and journeys: what the worker must publish."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orchestrator.contract.events import event_from_document
from orchestrator.contract.loader import load
from orchestrator.engine import Engine
from orchestrator.engine.history import order_of
from orchestrator.settings import DEV_COUPON_SECRET
from orchestrator.simulate import Result, Simulator


def oracle(journeys: Path, documents: list[dict[str, Any]]) -> Result:
    loaded = load([journeys])
    assert loaded.ok, loaded.problems
    events = sorted((event_from_document(d) for d in documents), key=order_of)
    engine = Engine.of(loaded, secret=DEV_COUPON_SECRET.encode())
    return Simulator(engine, record_events=True).run(events)  # the worker audits events too


def expected_actions(journeys: Path, documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return oracle(journeys, documents).actions


def per_customer(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        grouped.setdefault(record["customer"], []).append(record)
    return grouped


def by_id(actions: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {a["action_id"]: a for a in actions}
