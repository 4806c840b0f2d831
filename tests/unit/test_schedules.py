"""Scheduled triggers without services: when occurrences fall (each form, local time across DST, spread), and
that a member enters once per occurrence, as of that instant, in event-time order with their own events."""

from __future__ import annotations

import zoneinfo
from collections import Counter
from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.contract.journeys import Policy
from orchestrator.contract.schedules import Schedule
from orchestrator.engine import Engine
from orchestrator.engine.schedule import next_entry, spread_offset
from orchestrator.simulate import simulate
from orchestrator.timefmt import format_ms, parse_rfc3339, to_ms
from tests.helpers import ev, journey, kinds

ROME, NEW_YORK = zoneinfo.ZoneInfo("Europe/Rome"), zoneinfo.ZoneInfo("America/New_York")
HOUR = 3_600_000


def ms(text: str) -> int:
    return to_ms(parse_rfc3339(text))


def occurrences(schedule: Schedule, zone: zoneinfo.ZoneInfo, start: str, end: str, spread: int = 0,
                key: str = "c-1") -> list[str]:  # fmt: skip
    """Every entry instant of `key` from `start` to `end`, as RFC 3339, following next_entry from one to the next."""
    found, after = [], ms(start)
    while (entry := next_entry(schedule, spread, "j", key, zone, after)) is not None and entry.due <= ms(end):
        found.append(format_ms(entry.due))
        after = entry.due
    return found


def test_a_daily_local_time_holds_across_the_dst_change_in_rome_and_new_york() -> None:
    """Clocks go forward on 2026-03-08 in New York and on 2026-03-29 in Rome: 09:00 stays 09:00 local."""
    daily = Schedule(time="09:00")
    assert occurrences(daily, NEW_YORK, "2026-03-05T00:00:00Z", "2026-03-10T23:00:00Z") == [
        "2026-03-05T14:00:00Z", "2026-03-06T14:00:00Z", "2026-03-07T14:00:00Z",
        "2026-03-08T13:00:00Z", "2026-03-09T13:00:00Z", "2026-03-10T13:00:00Z"]  # fmt: skip
    assert occurrences(daily, ROME, "2026-03-26T00:00:00Z", "2026-03-31T23:00:00Z") == [
        "2026-03-26T08:00:00Z", "2026-03-27T08:00:00Z", "2026-03-28T08:00:00Z",
        "2026-03-29T07:00:00Z", "2026-03-30T07:00:00Z", "2026-03-31T07:00:00Z"]  # fmt: skip
    # 02:30 does not exist on the day clocks go forward: it comes out as 03:30 (as wait_until's times do)
    night = occurrences(Schedule(time="02:30"), ROME, "2026-03-28T00:00:00Z", "2026-03-30T23:00:00Z")
    assert night == ["2026-03-28T01:30:00Z", "2026-03-29T01:30:00Z", "2026-03-30T00:30:00Z"]


def test_each_schedule_form_and_its_bounds() -> None:
    once = Schedule.model_validate({"at": "2026-11-27T10:00:00Z"})
    assert occurrences(once, NEW_YORK, "2026-11-01T00:00:00Z", "2026-12-31T00:00:00Z") == ["2026-11-27T10:00:00Z"]
    assert next_entry(once, 0, "j", "c", ROME, ms("2026-11-27T10:00:00Z")) is None  # strictly after
    local = Schedule(date="2026-11-27", time="10:00")
    assert occurrences(local, ROME, "2026-11-01T00:00:00Z", "2026-12-31T00:00:00Z") == ["2026-11-27T09:00:00Z"]
    assert occurrences(local, NEW_YORK, "2026-11-01T00:00:00Z", "2026-12-31T00:00:00Z") == ["2026-11-27T15:00:00Z"]
    mondays = Schedule.model_validate({"time": "09:00", "days": ["mon"], "from": "2026-11-02", "until": "2026-11-16"})
    assert occurrences(mondays, ROME, "2026-10-01T00:00:00Z", "2026-12-31T00:00:00Z") == [
        "2026-11-02T08:00:00Z", "2026-11-09T08:00:00Z", "2026-11-16T08:00:00Z"]  # fmt: skip
    # from/until are dates of the customer's calendar: Monday 09:00 in Auckland is Sunday evening in UTC
    auckland = zoneinfo.ZoneInfo("Pacific/Auckland")
    assert occurrences(mondays, auckland, "2026-10-01T00:00:00Z", "2026-12-31T00:00:00Z")[0] == "2026-11-01T20:00:00Z"


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=12), st.integers(1, 23 * HOUR), st.dates())
def test_spread_offsets_lie_in_the_spread_and_are_stable(key: str, spread: int, day: object) -> None:
    label = str(day)
    offset = spread_offset(spread, "j", key, label)
    assert 0 <= offset < spread
    assert offset == spread_offset(spread, "j", key, label)


def test_a_two_hour_spread_sends_about_evenly_over_two_hours() -> None:
    schedule = Schedule.model_validate({"at": "2026-11-27T10:00:00Z"})
    dues = [next_entry(schedule, 2 * HOUR, "j", f"c-{n}", ROME, 0) for n in range(4000)]
    quarters = Counter((entry.due - ms("2026-11-27T10:00:00Z")) // (HOUR // 2) for entry in dues if entry)
    assert sorted(quarters) == [0, 1, 2, 3]
    assert all(900 <= n <= 1100 for n in quarters.values()), quarters


WEEKLY = """id: weekly
trigger:
  schedule: {time: "09:00", days: [mon], from: "2026-03-02", until: "2026-03-30"}
  audience: buyers
  spread: 30m
reentry: always
steps:
  - send: {channel: email, template: digest}
"""
SEGMENTS = {"buyers": {"profile.orders": {"gte": 1}}}
POLICY = Policy(consent_required=(), default_timezone="Europe/Rome")


def test_members_enter_once_per_occurrence_and_an_audience_that_changes_between_occurrences() -> None:
    events = [ev("purchase", "2026-03-01T10:00:00Z", "c-1", order_id="o1", value=10),
              ev("identify", "2026-03-01T11:00:00Z", "c-2", timezone="America/New_York"),
              ev("purchase", "2026-03-10T11:00:00Z", "c-2", order_id="o2", value=10),  # a buyer from the 2nd Monday
              ev("page_view", "2026-03-05T11:00:00Z", "anon:cookie"),  # anonymous: never in an audience
              ev("page_view", "2026-03-20T11:00:00Z", "c-3")]  # known, never a buyer  # fmt: skip
    result = simulate(Engine([journey(WEEKLY)], POLICY, segments=SEGMENTS), events, ms("2026-04-30T00:00:00Z"))
    sent = Counter((a["customer_id"], a["at"][:10]) for a in result.actions)
    assert sent == Counter({("c-1", day): 1 for day in ("2026-03-02", "2026-03-09", "2026-03-16", "2026-03-23",
                                                         "2026-03-30")}
                           | {("c-2", day): 1 for day in ("2026-03-16", "2026-03-23", "2026-03-30")})  # fmt: skip
    assert all(a["event_id"] is None for a in result.actions)
    entered = kinds(result, "entered")
    assert {r["customer"] for r in entered} == {"c-1", "c-2"} and len(entered) == 8
    broadcasts = kinds(result, "broadcast")
    assert [(b["occurrence"], b["audience"], b["entered"]) for b in broadcasts] == [
        ("2026-03-02", 1, 1), ("2026-03-09", 1, 1), ("2026-03-16", 2, 2), ("2026-03-23", 2, 2), ("2026-03-30", 2, 2)]
    assert not kinds(result, "not_entered")


def test_the_entry_runs_before_the_customers_events_at_the_same_instant_and_sees_the_profile_then() -> None:
    """An order at the very instant of the entry is not seen by it (timers before events); one a millisecond
    before is; `where` and the audience use profile.recent counted at the entry instant."""
    flow = journey("""id: once
trigger:
  schedule: {at: "2026-03-02T10:00:00Z"}
  audience: all
  where: {profile.recent.purchase.1d: {eq: 0}}
steps:
  - send: {channel: email, template: "n={{ profile.orders }}"}
""")
    events = [ev("page_view", "2026-03-01T09:00:00Z", "c-1"), ev("page_view", "2026-03-01T09:00:00Z", "c-2"),
              ev("purchase", "2026-03-02T09:59:59.999Z", "c-1", order_id="o1", value=5),
              ev("purchase", "2026-03-02T10:00:00Z", "c-2", order_id="o2", value=5),
              ev("page_view", "2026-03-02T10:00:00Z", "c-new")]  # first event at the instant: not before it
    result = simulate(Engine([flow], POLICY), events)
    assert [(a["customer_id"], a["template"]) for a in result.actions] == [("c-2", "n=0")]
    (broadcast,) = kinds(result, "broadcast")
    assert broadcast["audience"] == 2 and broadcast["entered"] == 1 and broadcast["not_entered"] == {"where": 1}
    entry = result.states["c-2"].history["once"]
    assert entry.runs == 1


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 20 * 24), st.sampled_from(["purchase", "page_view"])),
                min_size=1, max_size=40))  # fmt: skip
def test_a_scheduled_entry_happens_exactly_once_per_member_per_occurrence(
    moves: list[tuple[int, int, str]],
) -> None:
    """Whatever the customers do and when, each member of the audience at an occurrence enters exactly once for it,
    and nobody else does."""
    start = datetime(2026, 3, 1)
    events = [ev(kind, (start + timedelta(hours=hour)).strftime("%Y-%m-%dT%H:%M:%SZ"), f"c-{who}",
                 **({"order_id": f"o{n}", "value": 1} if kind == "purchase" else {}))
              for n, (who, hour, kind) in enumerate(moves)]  # fmt: skip
    events.sort(key=lambda e: (e.ts, e.id))
    engine = Engine([journey(WEEKLY)], POLICY, segments=SEGMENTS)
    result = simulate(engine, events, ms("2026-04-30T00:00:00Z"))
    runs = Counter((r["customer"], r["at"][:10]) for r in kinds(result, "entered"))
    assert all(n == 1 for n in runs.values())
    first = {}
    bought: dict[str, list[int]] = {}
    for event in events:
        first.setdefault(event.customer, event.ts)
        if event.type == "purchase":
            bought.setdefault(event.customer, []).append(event.ts)
    for customer, day in runs:  # a member: known before, a buyer before the entry instant
        (entry,) = [r for r in kinds(result, "entered") if r["customer"] == customer and r["at"][:10] == day]
        at = ms(entry["at"])
        assert first[customer] < at and any(ts < at for ts in bought.get(customer, []))
    expected = {(c, day) for c, times in bought.items() for day in ("2026-03-02", "2026-03-09", "2026-03-16")
                if any(ts < ms(f"{day}T08:00:00Z") for ts in times)}  # Rome 09:00 is 08:00Z in March, +0..30m
    assert expected <= set(runs)


def test_a_schedule_needs_an_audience_and_one_form() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="needs audience"):
        journey(WEEKLY.replace("  audience: buyers\n", ""))
    with pytest.raises(ValidationError, match=r"only profile\. paths"):
        journey(WEEKLY.replace("  spread: 30m\n", "  where: {event.type: x}\n"))
    with pytest.raises(ValidationError, match="spread is at most 23h"):
        journey(WEEKLY.replace("spread: 30m", "spread: 1d"))
    with pytest.raises(ValidationError, match="with at is one instant"):
        journey(WEEKLY.replace('{time: "09:00", days: [mon], from: "2026-03-02", until: "2026-03-30"}',
                               '{at: "2026-03-02T10:00:00Z", time: "10:00"}'))  # fmt: skip
    with pytest.raises(ValidationError, match="audience and spread belong to a schedule trigger"):
        journey("id: x\ntrigger: {event: a, audience: all}\nsteps: [exit]\n")


def test_a_customer_stored_before_a_deploy_is_planned_as_of_it_by_any_step_even_a_visit() -> None:
    """The worker's side of `simulate --deploy`: a stored customer lacking a plan for a scheduled journey deployed at
    D is planned as of D by their next step, whatever it is (a sweep's visit, a late event), so the entry is the one
    `simulate` plans at D; a customer first seen after the schedule's last entry is never planned for it."""
    from orchestrator.engine.broadcast import VISIT
    from orchestrator.engine.state import CustomerState, Timer
    from orchestrator.engine.step import step

    once = journey("""id: once
trigger:
  schedule: {at: "2026-03-02T12:00:00Z"}
  audience: all
steps:
  - send: {channel: email, template: news}
""")
    deployed = ms("2026-03-02T09:00:00Z")
    engine = Engine([once], POLICY, deployed={"once": deployed})
    old = CustomerState("c-1")  # stored before the deploy, planned for nothing
    visit = step(engine, old, Timer(deployed, "c-1", "once", VISIT))
    assert [format_ms(t.due) for t in visit.scheduled] == ["2026-03-02T12:00:00Z"] and not visit.actions
    assert step(engine, visit.state, Timer(deployed + 1, "c-1", "once", VISIT)).scheduled == []  # idempotent
    late = step(engine, CustomerState("c-2"), ev("page_view", "2026-03-02T13:00:00Z", "c-2"))
    assert [a["template"] for a in late.actions] == ["news"]  # its entry at 12:00 runs before its 13:00 event
    assert late.actions[0]["at"] == "2026-03-02T12:00:00Z"
    new = step(engine, None, ev("page_view", "2026-03-02T13:00:00Z", "c-3"))  # first seen after it: never
    assert not new.actions and new.state is not None and not new.state.planned["once"].token
    again = step(engine, new.state, ev("page_view", "2026-03-02T14:00:00Z", "c-3"))
    assert not again.actions and not again.scheduled
