"""Triggers besides `event:` (inactive_for, becomes) and why a customer did not enter (`not_entered`)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from orchestrator.engine.state import CustomerState
from tests.helpers import OPEN_POLICY, ev, journey, kinds, policy, run, sends

WIN_BACK = """
id: win-back
trigger: {inactive_for: 30d}
reentry: always
steps:
  - send: {channel: email, template: miss-you}
"""


def test_inactivity_enters_when_the_duration_passes_without_an_event() -> None:
    result = run(journey(WIN_BACK), [ev("page_view", "2026-03-01T10:00:00Z")], until="2026-05-01T00:00:00Z")
    assert sends(result) == [("2026-03-31T10:00:00Z", "email", "miss-you")]
    entered = kinds(result, "entered")
    assert len(entered) == 1 and "event_id" not in entered[0]


def test_each_event_rearms_the_inactivity_timer() -> None:
    events = [ev("page_view", "2026-03-01T10:00:00Z"), ev("page_view", "2026-03-20T10:00:00Z")]
    result = run(journey(WIN_BACK), events, until="2026-04-15T00:00:00Z")
    assert sends(result) == []  # 30 days after the 20th is April 19th
    result = run(journey(WIN_BACK), events, until="2026-04-20T00:00:00Z")
    assert sends(result) == [("2026-04-19T10:00:00Z", "email", "miss-you")]


def test_inactivity_fires_once_per_quiet_spell() -> None:
    result = run(journey(WIN_BACK), [ev("page_view", "2026-03-01T10:00:00Z")], until="2026-12-01T00:00:00Z")
    assert len(result.actions) == 1
    events = [ev("page_view", "2026-03-01T10:00:00Z"), ev("page_view", "2026-05-01T10:00:00Z")]
    assert [a["at"] for a in run(journey(WIN_BACK), events, until="2026-12-01T00:00:00Z").actions] == [
        "2026-03-31T10:00:00Z", "2026-05-31T10:00:00Z"]  # fmt: skip


def test_inactivity_where_reads_the_profile_and_says_why_not() -> None:
    j = journey(WIN_BACK.replace("{inactive_for: 30d}", "{inactive_for: 30d, where: {profile.orders: {gte: 1}}}"))
    events = [ev("page_view", "2026-03-01T10:00:00Z"), ev("page_view", "2026-03-01T10:00:00Z", customer="c-2"),
              ev("purchase", "2026-03-01T11:00:00Z", customer="c-2", value=10, order_id="o-1")]  # fmt: skip
    result = run(j, events, until="2026-05-01T00:00:00Z")
    assert [a["customer_id"] for a in result.actions] == ["c-2"]
    (refused,) = kinds(result, "not_entered")
    assert refused["customer"] == "c-1" and refused["reason"] == "where"
    assert refused["condition"] == {"profile.orders": {"gte": 1}}


def test_an_inactivity_where_cannot_read_an_event() -> None:
    with pytest.raises(ValidationError, match="only profile"):
        journey(WIN_BACK.replace("{inactive_for: 30d}", "{inactive_for: 30d, where: {event.channel: web}}"))


def test_the_inactivity_timer_survives_a_restart_from_json() -> None:
    from orchestrator.engine import Engine

    engine = Engine([journey(WIN_BACK)], OPEN_POLICY)
    state = CustomerState("c-1")
    engine.on_event(state, ev("page_view", "2026-03-01T10:00:00Z"), 1)
    again = CustomerState.from_dict(state.to_dict())
    assert again.pending_timers() == state.pending_timers() and len(again.pending_timers()) == 1


MILESTONE = """
id: vip
trigger: {becomes: {profile.lifetime_value: {gte: 500}}}
reentry: always
steps:
  - send: {channel: email, template: welcome-vip}
"""


def test_becomes_enters_when_an_event_makes_the_condition_true() -> None:
    events = [ev("purchase", f"2026-03-0{d}T10:00:00Z", value=300, order_id=f"o-{d}") for d in (1, 2, 3)]
    result = run(journey(MILESTONE), events)
    assert sends(result) == [("2026-03-02T10:00:00Z", "email", "welcome-vip")]  # not again: it held before


def test_becomes_is_seen_on_any_event_type_and_not_when_it_already_held() -> None:
    j = journey("""
id: gold
trigger: {becomes: {profile.traits.tier: gold}}
reentry: always
steps: [{send: {channel: email, template: t}}]
""")
    tiers = ["gold", "gold", "silver", "gold"]
    events = [ev("identify", f"2026-03-0{i + 1}T10:00:00Z", tier=tier) for i, tier in enumerate(tiers)]
    assert [a["at"] for a in run(j, events).actions] == ["2026-03-01T10:00:00Z", "2026-03-04T10:00:00Z"]


def test_becomes_over_a_count_in_time() -> None:
    j = journey("""
id: browser
trigger: {becomes: {profile.recent.product_view.7d: {gte: 3}}}
steps: [{send: {channel: email, template: t}}]
""")
    days = ["2026-03-01", "2026-03-05", "2026-03-09", "2026-03-10"]
    events = [ev("product_view", f"{d}T10:00:00Z") for d in days]
    # 1st, 5th, 9th: the 1st is more than 7 days before the 9th; the 10th makes three within 7 days.
    assert [a["at"] for a in run(j, events).actions] == ["2026-03-10T10:00:00Z"]


TRIGGERED = """
id: cart
trigger: {event: cart_add, where: {profile.cart_value: {gte: 30}}}
reentry: REENTRY
steps:
  - wait: 1h
  - send: {channel: email, template: t}
"""


def cart(at: str, price: float = 40, customer: str = "c-1"):  # type: ignore[no-untyped-def]
    return ev("cart_add", at, customer=customer, sku=f"S{at}", price=price)


def test_not_entered_names_the_where_condition_that_failed() -> None:
    result = run(journey(TRIGGERED.replace("REENTRY", "never")), [cart("2026-03-01T10:00:00Z", price=5)])
    (refused,) = kinds(result, "not_entered")
    assert refused["reason"] == "where" and refused["condition"] == {"profile.cart_value": {"gte": 30}}
    assert refused["journey"] == "cart" and refused["version"] == 1 and refused["event_id"]


def test_not_entered_while_running_and_when_reentry_is_blocked() -> None:
    events = [cart("2026-03-01T10:00:00Z"), cart("2026-03-01T10:30:00Z"), cart("2026-03-01T12:00:00Z")]
    result = run(journey(TRIGGERED.replace("REENTRY", "never")), events)
    assert [(r["reason"], r.get("run")) for r in kinds(result, "not_entered")] == [("running", 1), ("reentry", None)]
    assert "until" not in kinds(result, "not_entered")[1]
    result = run(journey(TRIGGERED.replace("REENTRY", "1d")), events)
    assert kinds(result, "not_entered")[1]["until"] == "2026-03-02T11:00:00Z"  # exited at 11:00, plus a day


def test_not_entered_when_disabled() -> None:
    j = journey(TRIGGERED.replace("REENTRY", "never") + "enabled: false\n")
    result = run(j, [cart("2026-03-01T10:00:00Z")])
    assert result.actions == [] and [r["reason"] for r in kinds(result, "not_entered")] == ["disabled"]


def test_other_event_types_give_no_not_entered() -> None:
    result = run(journey(TRIGGERED.replace("REENTRY", "never")), [ev("page_view", "2026-03-01T10:00:00Z")])
    assert kinds(result, "not_entered") == []


def _limit(n: int) -> str:
    return f"consent_required: []\nmax_active_journeys: {n}\n"


def test_max_active_journeys_refuses_a_third_marketing_journey_but_not_a_transactional_one() -> None:
    base = TRIGGERED.replace("REENTRY", "never").replace(", where: {profile.cart_value: {gte: 30}}", "")
    journeys = [journey(base.replace("id: cart", f"id: j{i}")) for i in range(3)]
    journeys.append(journey(base.replace("id: cart", "id: receipt") + "category: transactional\n"))
    result = run(journeys, [cart("2026-03-01T10:00:00Z")], policy(_limit(2)))
    (refused,) = kinds(result, "not_entered")
    assert refused["journey"] == "j2" and refused["reason"] == "max_active_journeys"
    assert refused["active"] == ["j0", "j1"]
    assert sorted({a["journey"] for a in result.actions}) == ["j0", "j1", "receipt"]


def test_a_trigger_needs_exactly_one_kind() -> None:
    for bad in ("{}", "{event: a, inactive_for: 1d}", "{becomes: {profile.orders: 1}, event: a}"):
        with pytest.raises(ValidationError, match="exactly one of event, inactive_for, becomes or schedule"):
            journey(WIN_BACK.replace("{inactive_for: 30d}", bad))
