"""The chaos test's generated log keeps its timing promise, checked with `simulate` (no services)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

from orchestrator.contract.events import event_from_document
from orchestrator.contract.loader import load
from orchestrator.engine import Engine
from orchestrator.engine.history import order_of
from orchestrator.simulate import Simulator
from orchestrator.timefmt import parse_rfc3339, to_ms
from tests.chaos.generator import SIGN_IN_GAP, SLOT_SECONDS, plan

JOURNEYS = Path(__file__).parents[1] / "chaos" / "journeys"
START = 1_795_737_600  # an even second


def test_no_event_lands_within_a_second_of_a_timer_and_people_keep_one_key() -> None:
    records = plan(seed=7, people=300, slots=60)
    documents = []
    for record in records:
        if record.document is not None:
            moment = datetime.fromtimestamp(START + record.slot * SLOT_SECONDS, UTC)
            documents.append({**record.document, "occurred_at": moment.strftime("%Y-%m-%dT%H:%M:%SZ")})
    loaded = load([JOURNEYS])
    assert loaded.ok, loaded.problems
    result = Simulator(Engine.of(loaded)).run(
        sorted((event_from_document(d) for d in documents), key=order_of)
    )
    event_times: dict[str, set[int]] = defaultdict(set)
    for document in documents:
        event_times[document["event_id"].rsplit("-", 1)[0]].add(to_ms(parse_rfc3339(document["occurred_at"])))
    assert len(result.actions) > 100
    for action in result.actions:
        at = to_ms(parse_rfc3339(action["at"]))
        key = action["customer_id"]  # a person's anonymous key anon:a-<run>-<n> belongs to c-<run>-<n>
        person = event_times["c-" + key.removeprefix("anon:a-") if key.startswith("anon:a-") else key]
        # Sent on an event (at its time, an even second) or by a timer (an odd second: a second from any event).
        assert at in person or (at // 1000 - START) % 2 == 1, action
    # A person's records share a key until they sign in; the sign-in waits for their anonymous events to settle.
    by_person: dict[str, list[int]] = defaultdict(list)
    for record in records:
        if record.document is not None and "anonymous_id" in record.document and "customer_id" not in record.document:
            by_person[record.document["anonymous_id"]].append(record.slot)
    for record in records:
        document = record.document
        if document is not None and document["type"] == "identify" and "anonymous_id" in document:
            anonymous = by_person.get(document["anonymous_id"], [])
            assert not anonymous or record.slot - max(anonymous) >= SIGN_IN_GAP
