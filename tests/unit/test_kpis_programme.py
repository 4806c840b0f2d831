"""The KPIs of the records the engine writes for entries refused (`not_entered`), the per-step details the journey
maps draw, and the programme's lift over the global control group (profiles' `programme`), by hand."""

from __future__ import annotations

import math
import statistics
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from orchestrator.measurement import dashboard
from orchestrator.measurement.kpis import Kpis, change, contribution, summarize
from orchestrator.measurement.lift import NO_CONTROL, Z95, mean_lift
from orchestrator.measurement.report import print_report
from orchestrator.serving import schemas


def audit(kind: str, at: str = "2026-03-02T10:00:00Z", **fields: Any) -> dict[str, Any]:
    return {"at": at, "customer": "c", "kind": kind, **fields}


NOT_ENTERED = [
    audit("not_entered", journey="cart", version=1, reason="where", event_id="e-1",
          condition={"profile.cart_value": {"gte": 30}}),
    audit("not_entered", journey="cart", version=1, reason="where", event_id="e-2",
          condition={"event.channel": {"in": ["web"]}}),
    audit("not_entered", journey="cart", version=1, reason="reentry", until="2026-03-09T10:00:00Z"),
    audit("not_entered", journey="cart", version=1, reason="reentry"),
    audit("not_entered", journey="cart", version=1, reason="running", run=3),
    audit("not_entered", "2026-03-03T10:00:00Z", journey="cart", version=1, reason="max_active_journeys",
          active=["a", "b"]),
    audit("not_entered", journey="promo", version=2, reason="disabled"),
]  # fmt: skip


def test_not_entered_counts_per_journey_by_reason() -> None:
    kpis = Kpis()
    kpis.add_audit(NOT_ENTERED)
    report = kpis.summary(["cart", "promo", "idle"])
    assert report["journeys"]["cart"]["not_entered"] == {"max_active_journeys": 1, "reentry": 2, "running": 1,
                                                         "where": 2}  # fmt: skip
    assert report["journeys"]["promo"]["not_entered"] == {"disabled": 1}
    assert report["journeys"]["idle"]["not_entered"] == {}
    cart = report["journeys"]["cart"]
    assert (cart["entered"], cart["active"]) == (0, 0)  # a refused entry is no run
    assert report["days"] == {}  # totals only: entries are counted per day, refusals are not


def test_the_steps_details_suppressions_by_reason_wait_outcomes_and_exits() -> None:
    kpis = Kpis()
    run: dict[str, Any] = {"journey": "j", "version": 1, "run": 1}
    kpis.add_audit([
        audit("step", **run, step="mail", type="send"), audit("step", **run, step="mail", type="send"),
        audit("step", **run, step="mail", type="send"),
        audit("suppressed", **run, step="mail", channel="email", template="t", reason="journey_cap"),
        audit("suppressed", **run, step="mail", channel="email", template="t", reason="spacing"),
        audit("suppressed", **run, step="mail", channel="email", template="t", reason="spacing"),
        audit("step", **run, step="visit", type="wait_for", until="2026-03-03T10:00:00Z"),
        audit("step", **run, step="visit", type="wait_for", until="2026-03-03T10:00:00Z"),
        audit("matched", **run, step="visit", event_id="e-9"), audit("timed_out", **run, step="visit"),
        audit("step", **run, step="birthday", type="wait_until"),
        audit("exited", **run, reason="no_date", step="birthday"), audit("exited", **run, reason="completed"),
    ])  # fmt: skip
    steps = kpis.summary({"j": ["mail", "visit", "birthday"]})["journeys"]["j"]["steps"]
    assert list(steps) == ["mail", "visit", "birthday"]
    assert steps["mail"] == {"reached": 3, "sent": 0, "suppressed": 3,
                             "suppressed_by": {"journey_cap": 1, "spacing": 2}, "matched": 0, "timed_out": 0,
                             "exited": {}}  # fmt: skip
    assert (steps["visit"]["reached"], steps["visit"]["matched"], steps["visit"]["timed_out"]) == (2, 1, 1)
    assert steps["birthday"]["exited"] == {"no_date": 1}
    details = [name for name in kpis.counts if name.startswith("day") and "\x1fat\x1f" in name]
    assert details == []  # the details are totals only, never per day


def member(control: bool, conversions: int, revenue: float, channels: tuple[str, ...] = ("web",)) -> dict[str, Any]:
    return {"channels": list(channels), "lifetime_value": revenue, "events": {"purchase": conversions},
            "programme": {"control": control, "conversions": conversions, "revenue": revenue}}  # fmt: skip


TREATED = [(2, 50.0), (0, 0.0), (1, 19.99), (3, 120.5), (1, 10.0)]
CONTROL = [(0, 0.0), (1, 25.0), (0, 0.0), (2, 40.0)]


def programme_of(profiles: list[dict[str, Any]]) -> dict[str, Any]:
    kpis = Kpis()
    for profile in profiles:
        kpis.add(contribution(profile))
    return dict(kpis.summary()["programme"])


def test_the_programmes_lift_is_welchs_difference_of_means() -> None:
    profiles = [member(False, c, r) for c, r in TREATED] + [member(True, c, r) for c, r in CONTROL]
    profiles.append({"channels": ["web"], "lifetime_value": 5, "events": {}})  # never in a marketing journey
    found = programme_of(profiles)
    assert found["control_group"] is True
    assert found["treated"] == {"customers": 5, "conversions": 7, "revenue": 200.49,
                                "conversions_per_customer": 1.4, "revenue_per_customer": 40.1}  # fmt: skip
    assert found["control"] == {"customers": 4, "conversions": 3, "revenue": 65.0,
                                "conversions_per_customer": 0.75, "revenue_per_customer": 16.25}  # fmt: skip
    for figure, index in (("conversions_per_customer", 0), ("revenue_per_customer", 1)):
        treated, control = [t[index] for t in TREATED], [c[index] for c in CONTROL]
        diff = statistics.mean(treated) - statistics.mean(control)
        se = math.sqrt(statistics.variance(treated) / len(treated) + statistics.variance(control) / len(control))
        lift = found[figure]
        assert math.isclose(lift["lift"], diff, rel_tol=1e-9)
        # Revenue squares count in whole units (rounded per customer): the interval moves by well under a cent.
        assert math.isclose(lift["ci95"][0], diff - Z95 * se, abs_tol=0.01)
        assert math.isclose(lift["ci95"][1], diff + Z95 * se, abs_tol=0.01)
        assert lift["verdict"].startswith("too few to tell: each group needs at least 30 customers")
    schemas.Programme.model_validate(found)


def test_programme_verdicts_in_words() -> None:
    many = 400
    works = mean_lift((many, 1.2 * many, 2.0 * many), (many, 0.8 * many, 1.2 * many), "conversions")
    assert works["verdict"].startswith("works: +0.40 conversions per customer (95% CI +0.")
    hurts = mean_lift((many, 0.8 * many, 1.2 * many), (many, 1.2 * many, 2.0 * many), "conversions")
    assert hurts["verdict"].startswith("hurts: -0.40 conversions per customer")
    flat = mean_lift((many, 1.0 * many, 2.0 * many), (many, 1.01 * many, 2.0 * many), "conversions")
    assert flat["verdict"].startswith("no measurable effect") and flat["ci95"][0] < 0 < flat["ci95"][1]
    assert mean_lift((10, 5, 5), (0, 0, 0), "revenue") == {"lift": None, "ci95": None, "verdict": NO_CONTROL}
    one = mean_lift((10, 5, 5), (1, 1, 1), "revenue")
    assert one["lift"] == -0.5 and one["ci95"] is None and one["verdict"].startswith("too few to tell")
    assert mean_lift((0, 0, 0), (5, 1, 1), "revenue")["verdict"].startswith("no treated customers yet")


def test_without_a_control_group_the_report_and_the_dashboard_say_so() -> None:
    kpis = Kpis()
    for profile in (member(False, 1, 10.0), member(False, 0, 0.0)):
        kpis.add(contribution(profile))
    summary = kpis.summary()
    assert summary["programme"]["control_group"] is False
    assert summary["programme"]["revenue_per_customer"]["verdict"] == NO_CONTROL
    console = Console(record=True, width=200, color_system=None)
    print_report(summary, console)
    text = console.export_text()
    assert NO_CONTROL.split(":")[0] in text and "treated" in text
    page = dashboard.render(summary)
    assert 'data-programme="no-control"' in page and "no control group" in page


@given(st.lists(st.tuples(st.integers(0, 4), st.one_of(
    st.none(), st.builds(member, st.booleans(), st.integers(0, 5), st.integers(0, 100_000).map(lambda c: c / 100)),
)), max_size=30))  # fmt: skip
def test_programme_deltas_sum_to_the_latest_profiles(updates: list[tuple[int, Any]]) -> None:
    """A customer's programme figures grow, or the customer is erased: the worker's deltas must still end at the
    counts of the final profiles."""
    kpis, latest = Kpis(), dict[int, Any]()
    for customer, new in updates:
        kpis.add(change(contribution(latest.get(customer)), new, []))
        latest[customer] = new
    expected = Kpis()
    for final in latest.values():
        expected.add(contribution(final))
    assert kpis.counts == expected.counts
    assert summarize(kpis.counts)["programme"] == summarize(expected.counts)["programme"]
