"""Small builders so engine tests read like the journeys they test."""

from __future__ import annotations

from itertools import count
from typing import Any

import yaml

from orchestrator.contract.events import Event, event_from_document
from orchestrator.contract.journeys import Journey, Policy
from orchestrator.engine import Engine
from orchestrator.simulate import Result, simulate

_ids = count(1)
BASE = "2026-03-02T10:00:00Z"
OPEN_POLICY = Policy(consent_required=())  # no consent needed: tests of flow, not of policy


def journey(text: str) -> Journey:
    return Journey.model_validate(yaml.safe_load(text))


def policy(text: str) -> Policy:
    return Policy.model_validate(yaml.safe_load(text))


def ev(type_: str, at: str, customer: str = "c-1", via: str = "web", **props: Any) -> Event:
    """An event of `type_` at `at` through channel `via`; keyword arguments are its properties."""
    document: dict[str, Any] = {
        "event_id": props.pop("event_id", f"e-{next(_ids)}"),
        "type": type_,
        "occurred_at": at,
        "channel": via,
        "properties": props,
    }
    if customer.startswith("anon:"):
        document["anonymous_id"] = customer[5:]
    else:
        document["customer_id"] = customer
    return event_from_document(document)


def run(
    journeys: list[Journey] | Journey, events: list[Event], pol: Policy = OPEN_POLICY, until: str | None = None
) -> Result:
    from orchestrator.timefmt import parse_rfc3339, to_ms

    items = journeys if isinstance(journeys, list) else [journeys]
    return simulate(Engine(items, pol), events, to_ms(parse_rfc3339(until)) if until else None)


def sends(result: Result) -> list[tuple[str, str, str]]:
    """(at, channel, template) of every action, in order."""
    return [(a["at"], a["channel"], a["template"]) for a in result.actions]


def kinds(result: Result, kind: str) -> list[dict[str, Any]]:
    return [r for r in result.audit if r["kind"] == kind]
