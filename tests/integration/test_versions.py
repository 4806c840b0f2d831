"""A new version of a journey deploys under a restart; runs in flight finish on the version they entered."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.integration.conftest import Stack, at

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

V1 = """id: nudge
version: 1
trigger: {event: cart_add}
steps:
  - wait: 8s
  - send: {channel: email, template: nudge-v1}
"""
V2 = V1.replace("version: 1", "version: 2").replace("wait: 8s", "wait: 1s").replace("nudge-v1", "nudge-v2")


def folder(tmp: Path, name: str, *journeys: str) -> Path:
    path = tmp / name
    path.mkdir()
    (path / "policy.yaml").write_text("consent_required: []\n")
    for index, text in enumerate(journeys):
        (path / f"j{index}.yaml").write_text(text)
    return path


def cart(event_id: str, customer: str) -> dict[str, object]:
    return {"event_id": event_id, "type": "cart_add", "occurred_at": at(0), "channel": "web",
            "customer_id": customer, "properties": {"sku": "S", "price": 1}}  # fmt: skip


def test_runs_in_flight_finish_on_their_version(stack: Stack) -> None:
    first = stack.start_worker("w1", journeys=folder(stack.tmp, "v1", V1))
    stack.produce([cart("e1", "c-early")])
    time.sleep(2)
    stack.stop(first)
    stack.start_worker("w2", journeys=folder(stack.tmp, "v2", V2))  # v1 is gone from the folder
    stack.produce([cart("e2", "c-late")])
    got = stack.actions(["email"], until=2, timeout=60)
    assert sorted((a["customer_id"], a["template"], a["journey_version"]) for a in got) == [
        ("c-early", "nudge-v1", 1), ("c-late", "nudge-v2", 2)]  # fmt: skip


def test_a_changed_journey_under_the_same_version_is_refused(stack: Stack) -> None:
    stack.stop(stack.start_worker("w1", journeys=folder(stack.tmp, "v1", V1)))
    edited = folder(stack.tmp, "edited", V1.replace("wait: 8s", "wait: 9s"))
    refused = stack.start_worker("w2", journeys=edited, wait=False)
    assert refused.wait(timeout=60) == 1
    assert "refusing to start: journey 'nudge' version 1 differs from the one already deployed" in stack.log("w2")
    assert "version: 2" in stack.log("w2")


def test_a_bad_journey_file_stops_the_start_with_the_validators_message(stack: Stack) -> None:
    broken = folder(stack.tmp, "broken", V1.replace("wait: 8s", "wait: 8x"))
    refused = stack.start_worker("w1", journeys=broken, wait=False)
    assert refused.wait(timeout=60) == 1
    assert "j0.yaml:5: steps.0.wait: bad duration '8x'" in stack.log("w1")
    assert "Traceback" not in stack.log("w1")
