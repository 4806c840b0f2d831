"""Each KPI against values computed by hand on small logs; the lift against textbook two-proportion figures."""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from orchestrator.engine import Engine
from orchestrator.measurement import dashboard
from orchestrator.measurement.kpis import SEP, Kpis, change, contribution, key, lift, summarize
from orchestrator.measurement.report import kpis_of, print_report
from orchestrator.serving import schemas
from orchestrator.serving.api import openapi_document
from orchestrator.simulate import Simulator
from tests.api_contract import body_problems
from tests.helpers import OPEN_POLICY, ev, journey, run

CART = journey("""
id: cart
trigger: {event: cart_add}
goal: {event: purchase, within: 1d}
steps:
  - send: {channel: email, template: reminder}
""")

STORE = journey("""
id: store
trigger: {event: store_visit}
steps:
  - send: {channel: instore, template: coupon, coupon: {discount_percent: 10, valid_for: 2d}}
""")


def test_lift_matches_the_two_proportion_textbook_figures() -> None:
    # 30/100 against 20/100: difference 0.10, SE sqrt(.3*.7/100 + .2*.8/100) = 0.0608276, pooled p 0.25.
    result = lift(100, 30, 100, 20)
    assert result["absolute"] == 0.30 - 0.20
    low, high = result["ci95"]
    assert math.isclose(low, 0.10 - 1.959964 * 0.0608276, abs_tol=1e-6)
    assert math.isclose(high, 0.10 + 1.959964 * 0.0608276, abs_tol=1e-6)
    assert math.isclose(result["relative"], 0.5)  # 0.10 over the holdout's 0.20
    assert math.isclose(result["relative_ci95"][0], low / 0.2)
    z = 0.10 / math.sqrt(0.25 * 0.75 * (1 / 100 + 1 / 100))  # 1.63299
    assert math.isclose(result["p_value"], 0.102470, abs_tol=1e-5)
    assert math.isclose(result["p_value"], math.erfc(z / math.sqrt(2)))
    assert result["verdict"].startswith("no measurable effect")


def test_lift_verdicts_in_words() -> None:
    works = lift(1000, 300, 1000, 200)  # CI 0.10 ± 0.0377: all above zero
    assert works["verdict"].startswith("works: +10.0 points")
    assert lift(1000, 200, 1000, 300)["verdict"].startswith("hurts")
    assert lift(20, 10, 20, 5)["verdict"].startswith("too few to tell")
    assert lift(50, 10, 0, 0)["verdict"].startswith("no holdout")
    assert lift(50, 10, 0, 0)["ci95"] is None


def audit(kind: str, at: str = "2026-03-02T10:00:00Z", **fields: Any) -> dict[str, Any]:
    return {"at": at, "customer": "c", "kind": kind, **fields}


def test_journey_funnel_exits_sends_suppressions_and_days() -> None:
    kpis = Kpis()
    kpis.add_audit([
        audit("entered", journey="j", holdout=False), audit("entered", journey="j", holdout=True),
        audit("entered", "2026-03-03T09:00:00Z", journey="j", holdout=False),
        audit("step", journey="j", step="mail", type="send"), audit("step", journey="j", step="mail", type="send"),
        audit("sent", journey="j", step="mail", channel="email", coupon="ABCD-EFGH-JKLM-NPQR"),
        audit("suppressed", journey="j", step="mail", channel="email", reason="holdout"),
        audit("exited", journey="j", reason="completed"), audit("exited", journey="j", reason="exit_on:purchase"),
        audit("converted", "2026-03-03T10:00:00Z", journey="j", holdout=False, path=["web", "instore"]),
        audit("converted", journey="j", holdout=True, path=["web"]),
    ])  # fmt: skip
    report = kpis.summary(["j", "idle"])
    j = report["journeys"]["j"]
    assert (j["entered"], j["active"], j["conversions"]) == (3, 1, 2)
    assert j["exited"] == {"completed": 1, "exit_on:purchase": 1}
    assert j["sends"] == {"email": 1} and j["suppressed"] == {"holdout": 1}
    assert j["steps"] == {"mail": {"reached": 2, "sent": 1, "suppressed": 1, "suppressed_by": {"holdout": 1},
                                   "matched": 0, "timed_out": 0, "exited": {}}}  # fmt: skip
    assert j["lift"]["treatment"] == {"entered": 2, "converted": 1, "rate": 0.5}
    assert j["lift"]["holdout"] == {"entered": 1, "converted": 1, "rate": 1.0}
    assert report["journeys"]["idle"]["entered"] == 0  # listed with nothing yet
    assert report["cross_channel"] == {"conversions": 2, "cross_channel": 1, "rate": 0.5, "top_paths": [
        {"path": ["web"], "conversions": 1}, {"path": ["web", "instore"], "conversions": 1}]}  # fmt: skip
    assert report["coupons"]["issued"] == 1 and report["channels"] == {"email": 1}
    assert report["days"] == {
        "2026-03-02": {"entered": 2, "sent": 1, "conversions": 1, "coupons_redeemed": 0},
        "2026-03-03": {"entered": 1, "sent": 0, "conversions": 1, "coupons_redeemed": 0},
    }


def profile(channels: list[str], value: float, events: int) -> dict[str, Any]:
    return {"channels": channels, "lifetime_value": value, "events": {"page_view": events}}


def test_clv_mean_median_single_vs_multi_and_engagement() -> None:
    kpis = Kpis()
    for p in (profile(["web"], 0, 1), profile(["app"], 50, 3), profile(["web", "instore"], 100, 4),
              profile(["web", "app", "instore"], 30.5, 4)):  # fmt: skip
        kpis.add(contribution(p))
    report = kpis.summary()
    # all: 0, 30.50, 50, 100 -> mean 180.50 / 4, median (30.50 + 50) / 2
    assert report["clv"]["all"] == {"customers": 4, "mean": 45.12, "median": 40.25, "total": 180.5}
    assert report["clv"]["single_channel"] == {"customers": 2, "mean": 25.0, "median": 25.0, "total": 50.0}
    assert report["clv"]["multi_channel"] == {"customers": 2, "mean": 65.25, "median": 65.25, "total": 130.5}
    engagement = report["engagement"]
    assert engagement["interactions_per_customer"] == 3.0  # 12 / 4
    assert engagement["channels_histogram"] == {"1": 2, "2": 1, "3": 1}
    assert engagement["interactions_histogram"] == {"1": 1, "3": 1, "4": 2}


profiles = st.builds(profile, st.lists(st.sampled_from(["web", "app", "instore", "email"]), unique=True, max_size=4),
                     st.integers(0, 50_000).map(lambda c: c / 100), st.integers(0, 20))  # fmt: skip


@given(st.lists(st.tuples(st.integers(0, 4), st.one_of(st.none(), profiles)), max_size=40))
def test_profile_deltas_always_sum_to_the_latest_profiles(updates: list[tuple[int, Any]]) -> None:
    """However a worker's updates interleave (None: the customer is erased or merged away), the counts it
    keeps equal those `report` computes from the final profiles."""
    kpis, latest = Kpis(), {}
    for customer, new in updates:
        kpis.add(change(contribution(latest.get(customer)), new, []))
        latest[customer] = new
    expected = Kpis()
    for final in latest.values():
        expected.add(contribution(final))
    assert kpis.counts == expected.counts
    assert summarize(kpis.counts) == summarize(expected.counts)


def test_a_small_log_end_to_end_cross_channel_paths_clv_and_coupons() -> None:
    # c-1: web cart, buys in store 1 h later (path web > pos); c-2: app cart, buys in the app; c-3: web cart only.
    events = [
        ev("cart_add", "2026-03-02T10:00:00Z", "c-1", "web", sku="A", price=100, quantity=1),
        ev("cart_add", "2026-03-02T10:00:00Z", "c-2", "app", sku="B", price=50, quantity=1),
        ev("cart_add", "2026-03-02T10:00:00Z", "c-3", "web", sku="C", price=10, quantity=1),
        ev("purchase", "2026-03-02T11:00:00Z", "c-1", "pos", order_id="o-1", value=100),
        ev("purchase", "2026-03-02T12:00:00Z", "c-2", "app", order_id="o-2", value=50),
    ]
    report = kpis_of(run(CART, events)).summary()
    cart = report["journeys"]["cart"]
    assert (cart["entered"], cart["sends"], cart["conversions"]) == (3, {"email": 3}, 2)
    assert report["cross_channel"]["rate"] == 0.5
    assert report["cross_channel"]["top_paths"] == [{"path": ["app"], "conversions": 1},
                                                    {"path": ["web", "pos"], "conversions": 1}]  # fmt: skip
    assert report["clv"]["multi_channel"] == {"customers": 1, "mean": 100.0, "median": 100.0, "total": 100.0}
    assert report["clv"]["single_channel"] == {"customers": 2, "mean": 25.0, "median": 25.0, "total": 50.0}
    assert report["engagement"]["interactions_per_customer"] == round(5 / 3, 2)


def test_coupon_redemption_rate_and_in_store_revenue() -> None:
    simulator = Simulator(Engine([STORE], OPEN_POLICY))
    for customer in ("c-1", "c-2"):
        simulator.feed(ev("store_visit", "2026-03-02T10:00:00Z", customer, "beacon", store_id="milano"))
    code = simulator.result.actions[0]["coupon"]["code"]
    # Redeemed at the till; the purchase that used it (same order_id) gives the revenue.
    simulator.feed(ev("coupon_redeemed", "2026-03-02T10:30:00Z", "c-1", "pos", code=code, order_id="o-9"))
    simulator.feed(ev("purchase", "2026-03-02T10:31:00Z", "c-1", "pos", order_id="o-9", value=80.5))
    simulator.feed(ev("purchase", "2026-03-02T10:32:00Z", "c-1", "pos", order_id="o-9", value=80.5))  # not twice
    report = kpis_of(simulator.result).summary()
    assert report["coupons"] == {"issued": 2, "redeemed": 1, "redemption_rate": 0.5, "revenue": 80.5}
    assert report["journeys"]["store"]["coupons_redeemed"] == 1
    assert report["days"]["2026-03-02"]["coupons_redeemed"] == 1


# ------------------------------------------------------------------ offers (decide steps)


def decided(
    customer: str, candidates: list[dict[str, Any]], picked: list[str], explore: bool = False
) -> dict[str, Any]:
    return audit("decided", customer=customer, journey="web-to-store", version=2, run=1, step="store-offer",
                 candidates=candidates, picked=picked, explore=explore)  # fmt: skip


def offer_send(kind: str, customer: str, offer: str, explore: bool = False, **fields: Any) -> dict[str, Any]:
    record = audit(kind, customer=customer, journey="web-to-store", version=2, run=1, step="store-offer",
                   channel="email", template=offer, offer=offer, **fields)  # fmt: skip
    if explore:
        record["explore"] = True  # absent otherwise, as the engine writes it
    return record


def converted(customer: str, offers: list[tuple[str, bool]] | None) -> dict[str, Any]:
    record = audit("converted", customer=customer, journey="web-to-store", version=2, run=1, holdout=False,
                   path=["web", "store"])  # fmt: skip
    if offers is not None:
        record["offers"] = [{"offer": offer, "explore": explore} for offer, explore in offers]
    return record


def score(offer: str, value: float) -> dict[str, Any]:
    return {"offer": offer, "score": value}


def out(offer: str, reason: str) -> dict[str, Any]:
    return {"offer": offer, "out": reason}


OFFER_LOG = [
    decided("c-1", [score("cart-10", 12.5), score("free-gift", 3.0), out("double-points", "capped")], ["cart-10"]),
    offer_send("sent", "c-1", "cart-10", action_id="a-1"),
    decided("c-2", [score("cart-10", 10), out("free-gift", "not_eligible"), out("double-points", "capped")],
            ["cart-10"]),
    offer_send("suppressed", "c-2", "cart-10", reason="frequency_cap"),
    decided("c-3", [score("free-gift", 4), score("cart-10", 9)], ["free-gift"], explore=True),
    offer_send("deferred", "c-3", "free-gift", explore=True, until="2026-03-02T08:00:00Z", reason="quiet_hours"),
    offer_send("sent", "c-3", "free-gift", explore=True, action_id="a-3"),
    decided("c-4", [out("cart-10", "no_consent"), out("free-gift", "not_eligible"), out("double-points", "not_valid")],
            []),
    decided("c-5", [score("cart-10", 8), score("free-gift", 7)], ["cart-10"], explore=True),
    offer_send("sent", "c-5", "cart-10", explore=True, action_id="a-5"),
    converted("c-1", [("cart-10", False), ("cart-10", False)]),  # the same offer twice in a run: one conversion
    converted("c-3", [("free-gift", True)]),
    converted("c-6", None),  # a run without a decide step
    converted("c-7", []),
]  # fmt: skip

OFFER_SUMMARY = {
    "cart-10": {
        "sent": 2, "converted": 1, "conversion_rate": 0.5,
        "chosen": {"sent": 1, "converted": 1, "conversion_rate": 1.0},
        "explore": {"sent": 1, "converted": 0, "conversion_rate": 0.0},
        "picked": 3, "candidate": 5, "out": {"no_consent": 1},
    },
    "double-points": {
        "sent": 0, "converted": 0, "conversion_rate": None,
        "chosen": {"sent": 0, "converted": 0, "conversion_rate": None},
        "explore": {"sent": 0, "converted": 0, "conversion_rate": None},
        "picked": 0, "candidate": 3, "out": {"capped": 2, "not_valid": 1},
    },
    "free-gift": {
        "sent": 1, "converted": 1, "conversion_rate": 1.0,
        "chosen": {"sent": 0, "converted": 0, "conversion_rate": None},
        "explore": {"sent": 1, "converted": 1, "conversion_rate": 1.0},
        "picked": 1, "candidate": 5, "out": {"not_eligible": 2},
    },
}  # fmt: skip


def offer_kpis(records: list[dict[str, Any]]) -> Kpis:
    kpis = Kpis()
    kpis.add_audit(records)
    return kpis


def test_offers_sends_conversions_chosen_vs_explored_candidates_outs_and_picks() -> None:
    report = offer_kpis(OFFER_LOG).summary()
    assert report["offers"] == OFFER_SUMMARY
    assert list(report["offers"]) == ["cart-10", "double-points", "free-gift"]  # by id
    # The journey's own figures are unchanged by the offers: 3 sends of which 1 suppressed, 4 conversions.
    j = report["journeys"]["web-to-store"]
    assert (j["sends"], j["suppressed"], j["conversions"]) == ({"email": 3}, {"frequency_cap": 1}, 4)
    assert j["steps"]["store-offer"] == {"reached": 0, "sent": 3, "suppressed": 1,
                                         "suppressed_by": {"frequency_cap": 1}, "matched": 0, "timed_out": 0,
                                         "exited": {}}  # fmt: skip


def test_offers_are_not_counted_per_day() -> None:
    counts = offer_kpis(OFFER_LOG).counts
    offer_keys = [name for name in counts if name.startswith(key("offer"))]
    assert offer_keys and not [name for name in counts if name.startswith("day") and "offer" in name.split(SEP)]
    # At most: per offer 2 sends + 2 conversions + candidate + picked + 4 out reasons.
    assert len(offer_keys) <= 3 * 10


def test_no_offers_is_an_empty_section() -> None:
    assert summarize({})["offers"] == {}
    assert offer_kpis([audit("sent", journey="j", step="s", channel="email")]).summary()["offers"] == {}


@given(st.permutations(OFFER_LOG), st.integers(0, len(OFFER_LOG)))
def test_offer_counts_of_two_halves_add_up_to_the_whole(records: list[dict[str, Any]], cut: int) -> None:
    """Worker partitions each count their share; the API sums them: any split must give the same figures."""
    whole, first, second = offer_kpis(records), offer_kpis(records[:cut]), offer_kpis(records[cut:])
    summed = Kpis(first.counts)
    summed.add(second.counts)
    assert summed.counts == whole.counts == first.counts + second.counts
    assert summed.summary()["offers"] == OFFER_SUMMARY
    # The worker's path: each step's `change` (its audit records, with their times) folded in.
    worker = Kpis()
    worker.add(change(Counter(), None, enumerate(records[:cut])))
    worker.add(change(Counter(), None, enumerate(records[cut:])))
    assert worker.counts == whole.counts


# ------------------------------------------------------------------ offers in the report, the dashboard and the API


def test_the_report_shows_an_offers_table_only_when_there_are_offers() -> None:
    def text(summary: dict[str, Any]) -> str:
        console = Console(record=True, width=200, color_system=None)
        print_report(summary, console)
        return console.export_text()

    shown = text(offer_kpis(OFFER_LOG).summary())
    assert "Offers (decide steps)" in shown
    cells = [[cell.strip() for cell in line.split("│")[1:-1]] for line in shown.splitlines()]
    rows = {row[0]: " | ".join(row) for row in cells if row and row[0] in OFFER_SUMMARY}
    assert list(rows) == ["cart-10", "double-points", "free-gift"]
    assert "50.0%" in rows["cart-10"] and "100.0% (1/1)" in rows["cart-10"] and "0.0% (0/1)" in rows["cart-10"]
    assert "no consent (1 of 5)" in rows["cart-10"]
    assert "n/a (0/0)" in rows["free-gift"] and "not eligible (2 of 5)" in rows["free-gift"]
    assert "capped (2 of 3)" in rows["double-points"]
    assert "Offers" not in text(offer_kpis([]).summary())


def bar_values(page: str, chart: str) -> dict[str, float]:
    svg = re.search(rf'<svg data-chart="{chart}".*?</svg>', page)
    assert svg, chart
    return {label: float(value) for label, value in re.findall(r'data-label="([^"]*)" data-value="([^"]*)"', svg[0])}


def test_the_dashboard_charts_offer_conversion_and_explored_vs_chosen() -> None:
    page = dashboard.render(offer_kpis(OFFER_LOG).summary())
    assert 'data-offers="all"' in page
    assert bar_values(page, "offer-conversion") == {"cart-10": 50.0, "free-gift": 100.0}  # sent at least once
    assert bar_values(page, "offer-explore-vs-chosen") == {
        "cart-10: chosen": 100.0, "cart-10: explored": 0.0, "free-gift: explored": 100.0,
    }  # fmt: skip
    assert bar_values(page, "offer-sends") == {"cart-10": 2, "double-points": 0, "free-gift": 1}
    assert "data-offers" not in dashboard.render(offer_kpis([]).summary())


def test_the_api_serves_the_offers_as_documented() -> None:
    """`GET /v1/kpis` builds its answer with `schemas.Kpis` (closed: a field it does not name is a 500) and the
    answer must be the one /openapi.json documents, checked strictly."""
    report = offer_kpis(OFFER_LOG).summary()
    answer = orjson.dumps(schemas.body(schemas.Kpis.model_validate(report)))
    assert orjson.loads(answer)["offers"] == OFFER_SUMMARY
    assert body_problems(openapi_document(), "GET", "/v1/kpis", 200, "application/json", answer) == []
    empty = orjson.dumps(schemas.body(schemas.Kpis.model_validate(summarize({}))))
    assert body_problems(openapi_document(), "GET", "/v1/kpis", 200, "application/json", empty) == []
