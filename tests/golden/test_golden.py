"""Replay recorded logs through the shipped journeys and compare with the recorded actions.

A change to the engine that alters what ops would see fails here. When the change is intended,
regenerate with `ORCH_UPDATE_GOLDEN=1 pytest tests/golden` and review the diff like code.
"""

import os
from pathlib import Path

import orjson

from orchestrator.contract.loader import load
from orchestrator.engine import Engine
from orchestrator.settings import DEV_COUPON_SECRET
from orchestrator.simulate import read_event_log, simulate

ROOT = Path(__file__).parents[2]
EXPECTED = Path(__file__).parent / "shipped-journeys.expected.jsonl"


def test_shipped_journeys_on_the_example_log() -> None:
    loaded = load([ROOT / "journeys"])
    assert loaded.ok
    log = read_event_log(ROOT / "examples" / "events.jsonl")
    assert log.bad == []
    engine = Engine.of(loaded, secret=DEV_COUPON_SECRET.encode())
    actions = simulate(engine, log.events).actions
    got = b"".join(orjson.dumps(a) + b"\n" for a in actions)
    if os.environ.get("ORCH_UPDATE_GOLDEN"):
        EXPECTED.write_bytes(got)
    assert got.decode().splitlines() == EXPECTED.read_text().splitlines()
    # What the example is there to show, so that a regenerated file cannot quietly lose it:
    by_template = {(a["customer_id"], a["template"]) for a in actions}
    assert ("c-anna", "store-coupon") in by_template  # web-to-store: the store visit brings the best offer
    assert any(a["customer_id"] == "c-anna" and a.get("offer") == "cart-10" for a in actions)
    assert all(len(a["data"]["recommended"]) > 0 for a in actions if a["template"] == "complementary-products")
    assert ("c-marco", "cart-reminder") in by_template  # abandoned cart, email not allowed -> push fallback
    assert ("c-paolo", "complementary-products") in by_template  # post-purchase follow-up
    assert ("c-lucia", "welcome") in by_template  # welcome once consent arrives
    assert not any(a["customer_id"] == "c-chiara" for a in actions)  # post-purchase holdout
