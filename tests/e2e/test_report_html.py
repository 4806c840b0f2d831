"""`orchestrator report --html` as a user runs it: the page draws each journey's map with the counts `--json`
prints, the programme's lift over the global control group, and the triggers that started no run."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from tests.e2e.test_cli import cli

SVG = "{http://www.w3.org/2000/svg}"
BRANCHING = """
id: branching
trigger: {event: cart_add, where: {event.channel: {in: [web, app]}}}
reentry: never
exit_on: [purchase]
goal: {event: purchase, within: 7d}
steps:
  - wait: 30m
  - id: big-cart
    if: {profile.cart_value: {gte: 100}}
    then: [{id: vip-mail, send: {channel: email, template: vip}}]
    else:
      - id: ab
        split:
          - {weight: 50, steps: [{id: mail-a, send: {channel: email, template: variant-a}}]}
          - {weight: 50, steps: []}
  - id: visit
    wait_for: {event: store_visit, timeout: 2d}
    on_event: [{id: bye, exit: true}]
  - {id: last-push, send: {channel: push, template: last-call}}
"""
POLICY = "default_timezone: UTC\nconsent_required: [email, sms, push]\nglobal_holdout: 20%\n"


def write_log(path: Path, customers: int = 80) -> None:
    start, lines = datetime(2026, 3, 2, 9, tzinfo=UTC), []

    def event(n: int, kind: str, at: datetime, customer: str, via: str, **properties: object) -> None:
        lines.append(orjson.dumps({"event_id": f"e-{customer}-{n}", "type": kind, "channel": via,
                                   "occurred_at": at.strftime("%Y-%m-%dT%H:%M:%SZ"), "customer_id": customer,
                                   "properties": properties}))  # fmt: skip

    for i in range(customers):
        customer, at = f"c-{i}", start + timedelta(minutes=7 * i)
        event(1, "consent_update", at, customer, "web", channel="email", granted=i % 5 != 0)
        event(2, "consent_update", at, customer, "web", channel="push", granted=True)
        event(3, "cart_add", at + timedelta(seconds=5), customer, "store" if i % 9 == 0 else "web", sku="S",
              price=150 if i % 3 == 0 else 40, quantity=1)  # fmt: skip
        event(4, "cart_add", at + timedelta(minutes=1), customer, "web", sku="T", price=5, quantity=1)
        if i % 4 == 0:
            event(5, "store_visit", at + timedelta(hours=3), customer, "store", store_id="milano")
        if i % 3 == 1:
            event(6, "purchase", at + timedelta(hours=30), customer, "web", order_id=f"o-{i}", value=20 + i)
        event(7, "cart_add", at + timedelta(days=4), customer, "web", sku="U", price=10, quantity=1)
    path.write_bytes(b"\n".join(lines) + b"\n")


def test_report_html_draws_the_journey_map_with_the_kpi_counts(tmp_path: Path) -> None:
    folder = tmp_path / "journeys"
    folder.mkdir()
    (folder / "branching.yaml").write_text(BRANCHING)
    (folder / "policy.yaml").write_text(POLICY)
    log, page = tmp_path / "events.jsonl", tmp_path / "kpis.html"
    write_log(log)
    as_json = cli("report", "--journeys", str(folder), "--events", str(log), "--json")
    assert as_json.returncode == 0, as_json.stderr
    journey = orjson.loads(as_json.stdout)["journeys"]["branching"]
    programme = orjson.loads(as_json.stdout)["programme"]
    shown = cli("report", "--journeys", str(folder), "--events", str(log), "--html", str(page))
    assert shown.returncode == 0, shown.stderr
    html = page.read_text()
    assert "<script" not in html

    svg = re.search(r'<svg data-chart="map-branching".*?</svg>', html, re.S)
    assert svg, "no journey map in the page: `report` must pass maps=journey_maps(engine.latest) to dashboard.render"
    root = ET.fromstring(svg[0])  # well-formed XML
    nodes = {g.get("data-step"): g for g in root.iter(f"{SVG}g") if g.get("class") == "node"}
    assert set(nodes) == {"steps.0", "big-cart", "vip-mail", "ab", "mail-a", "visit", "bye", "last-push"}
    for name, g in nodes.items():
        figures = journey["steps"].get(name, {"reached": 0, "sent": 0, "suppressed": 0})
        assert (g.get("data-reached"), g.get("data-sent"), g.get("data-suppressed")) == (
            str(figures["reached"]), str(figures["sent"]), str(figures["suppressed"])), name  # fmt: skip
    assert int(nodes["mail-a"].get("data-suppressed") or 0) > 0  # no consent for email: some are not sent
    edges = {(g.get("data-from"), g.get("data-to")): g.get("data-count") for g in root.iter(f"{SVG}g")
             if g.get("class") == "edge"}  # fmt: skip
    steps = journey["steps"]
    assert edges[("#start", "steps.0")] == str(journey["entered"]) and journey["entered"] > 0
    assert edges[("big-cart", "vip-mail")] == str(steps["vip-mail"]["reached"])
    assert edges[("visit", "bye")] == str(steps["visit"]["matched"])
    assert edges[("visit", "last-push")] == str(steps["visit"]["timed_out"])
    assert int(edges[("ab", "mail-a")] or 0) + int(edges[("ab", "visit")] or 0) == steps["ab"]["reached"]
    assert edges[("last-push", "#end")] == str(journey["exited"]["completed"])

    # The triggers that started no run: store carts (where), a second cart during the run (running), a cart days
    # later (reentry: never).
    assert {reason: n > 0 for reason, n in journey["not_entered"].items()} == {"where": True, "running": True,
                                                                               "reentry": True}  # fmt: skip
    assert 'data-chart="not-entered-branching"' in html and "Not entered: triggers that did not start" in shown.stdout
    # The programme against the global control group (20%): a lift, with its interval, in the page and the text.
    assert programme["control_group"] and programme["control"]["customers"] > 0
    assert 'data-programme="lift"' in html and 'data-chart="programme-revenue_per_customer-interval"' in html
    assert "Programme vs global control group" in shown.stdout and "lift (treated" in shown.stdout
