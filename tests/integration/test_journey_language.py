"""The second edition of the journey language on the real broker: the worker publishes what `simulate` says.

The journeys are written at test time, with times relative to now, so that every timer they set is due before the
test starts (the worker fires a timer once the watermark, about the wall clock, passes it) and `simulate` replays
them up to that same instant: inactivity triggers, `becomes`, `wait_until` at a time and on an anniversary, counts
over time, `max_sends`, a send window, a transactional journey, `max_active_journeys`, spacing and the global holdout.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from orchestrator.contract.events import event_from_document
from orchestrator.contract.loader import load
from orchestrator.engine import Engine
from orchestrator.engine.history import order_of
from orchestrator.settings import DEV_COUPON_SECRET
from orchestrator.simulate import Result, Simulator
from tests.integration.conftest import Stack, at
from tests.integration.oracle import by_id

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
CHANNELS = ["email", "sms", "push"]


def journeys(folder: Path, now: datetime) -> Path:
    """Journeys whose waits and windows fall in the half hour before `now`."""
    opens = (now - timedelta(minutes=20)).strftime("%H:%M")  # the send window opened 20 minutes ago (UTC)
    closes = (now + timedelta(hours=3)).strftime("%H:%M")
    files = {
        "policy.yaml": "consent_required: []\nmax_active_journeys: 2\nspacing: {min: 5m, channels: [email, sms]}\n"
                       "global_holdout: 15%\n",
        "win-back.yaml": "id: win-back\ntrigger: {inactive_for: 3m, where: {profile.orders: {gte: 1}}}\n"
                         "reentry: always\nsteps: [{send: {channel: push, template: miss-you}}]\n",
        "vip.yaml": "id: vip\npriority: 70\ntrigger: {becomes: {profile.lifetime_value: {gte: 100}}}\nsteps:\n"
                    "  - send: {channel: email, template: \"vip-{{ profile.traits.language | default: 'en' }}\"}\n",
        "reminder.yaml": "id: reminder\ncategory: transactional\ntrigger: {event: appointment_booked}\nsteps:\n"
                         "  - wait_until: {at: entry.properties.appointment_at, offset: -2m}\n"
                         "  - send: {channel: sms, template: appointment}\n",
        "birthday.yaml": "id: birthday\n"
                         "trigger: {event: identify, where: {event.properties.birthday: {exists: true}}}\n"
                         "steps:\n  - wait_until: {anniversary: profile.traits.birthday, offset: -2d}\n"
                         "  - send: {channel: email, template: birthday}\n",
        "browse.yaml": "id: browse\nreentry: always\nmax_sends: {max: 1, within: 1h}\n"
                       "trigger: {event: product_view, where: {profile.recent.product_view.10m: {gte: 2}}}\n"
                       f'send_window: {{start: "{opens}", end: "{closes}"}}\n'
                       "steps: [{send: {channel: push, template: still-looking}}]\n",
        "cart.yaml": "id: cart\nreentry: always\ntrigger: {event: cart_add}\nexit_on: [purchase]\n"
                     "steps: [{wait: 2m}, {send: {channel: email, template: cart-reminder}}]\n",
    }
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def ev(event_id: str, type_: str, occurred_at: str, customer: str, **props: Any) -> dict[str, Any]:
    return {"event_id": event_id, "type": type_, "occurred_at": occurred_at, "channel": "web",
            "customer_id": customer, "properties": props}  # fmt: skip


def history(now: datetime) -> list[dict[str, Any]]:
    """Forty customers over the half hour before `now`, every event at least 6 minutes old."""
    events: list[dict[str, Any]] = []
    tomorrow = (now + timedelta(days=1)).date().isoformat()
    for n in range(40):
        c, t = f"c-{n}", -1800 + n * 25  # the last customer starts 825 s after the first, ~14 min before now

        def when(s: float, t: int = t) -> str:
            return at(t + s, now)

        events.append(ev(f"{c}-id", "identify", when(0), c, **({"language": "it"} if n % 3 == 0 else {}),
                         **({"birthday": tomorrow} if n % 4 == 0 else {})))  # fmt: skip
        for k in range(n % 4):
            events.append(ev(f"{c}-v{k}", "product_view", when(10 + 40 * k), c, sku=f"S{k}"))
        events.append(ev(f"{c}-a", "cart_add", when(30), c, sku="S1", price=30))
        if n % 2:
            events.append(ev(f"{c}-p", "purchase", when(60), c, order_id=f"o-{n}", value=60 + 25 * (n % 3)))
        if n % 5 == 0:
            events.append(ev(f"{c}-p2", "purchase", when(90), c, order_id=f"o2-{n}", value=80))
        if n % 3 == 1:
            events.append(ev(f"{c}-b", "appointment_booked", when(40), c,
                             appointment_at=at(t + 400, now).replace("Z", "+00:00")))  # fmt: skip
    return events


def oracle(folder: Path, documents: list[dict[str, Any]], until: datetime) -> Result:
    loaded = load([folder])
    assert loaded.ok, loaded.problems
    events = sorted((event_from_document(d) for d in documents), key=order_of)
    engine = Engine.of(loaded, secret=DEV_COUPON_SECRET.encode())
    return Simulator(engine, record_events=True).run(events, until=int(until.timestamp() * 1000))


def test_worker_publishes_what_simulate_says_for_the_second_edition(stack: Stack, tmp_path: Path) -> None:
    stack.env["ORCH_TOPIC_PARTITIONS"] = "3"
    now = datetime.now(UTC).replace(microsecond=0)
    (tmp_path / "journeys").mkdir()
    folder = journeys(tmp_path / "journeys", now)
    events = history(now)
    result = oracle(folder, events, now)
    expected = result.actions
    # Every rule is at work in the oracle, so that agreeing with it means something.
    journeys_sent = Counter(a["journey"] for a in expected)
    assert {"win-back", "vip", "reminder", "birthday", "browse", "cart"} <= set(journeys_sent), journeys_sent
    reasons = Counter(r["reason"] for r in result.audit if r["kind"] in ("suppressed", "deferred", "not_entered"))
    for reason in ("global_holdout", "spacing", "journey_cap", "send_window", "max_active_journeys", "where"):
        assert reasons[reason], (reason, reasons)
    assert {a["template"] for a in expected} >= {"vip-it", "vip-en"}

    stack.start_worker(journeys=folder)
    stack.produce(events)
    got = stack.actions(CHANNELS, until=len(expected), timeout=150, settle=5)  # and nothing more comes
    assert Counter(a["action_id"] for a in got) == Counter(a["action_id"] for a in expected)
    assert by_id(got) == by_id(expected)


def test_worker_replays_the_all_features_golden_case(stack: Stack) -> None:
    """The golden case that uses every rule together (tests/golden/cases/all-features), from March: the worker fires
    its timers as the watermark passes them, simulate up to 12:30 that day, after the last timer."""
    case = Path(__file__).parents[1] / "golden" / "cases" / "all-features"
    documents = [orjson.loads(line) for line in (case / "events.jsonl").read_bytes().splitlines() if line.strip()]
    until = datetime(2026, 3, 2, 12, 30, tzinfo=UTC)
    expected = oracle(case / "journeys", documents, until).actions
    recorded = [orjson.loads(line) for line in (case / "expected.jsonl").read_bytes().splitlines() if line.strip()]
    assert expected == recorded
    stack.env["ORCH_TOPIC_PARTITIONS"] = "3"
    stack.start_worker(journeys=case / "journeys")
    stack.produce(documents)
    channels = sorted({a["channel"] for a in expected})
    got = stack.actions(channels, until=len(expected), timeout=150, settle=5)
    assert Counter(a["action_id"] for a in got) == Counter(a["action_id"] for a in expected)
    assert by_id(got) == by_id(expected)
