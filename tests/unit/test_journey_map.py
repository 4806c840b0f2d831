"""Journey maps: the flow of a compiled journey, the counts on its nodes and edges, and the SVG that draws them
(parsed as XML: every node and edge carries its numbers)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import orjson

from orchestrator.contract.offers import Catalogue
from orchestrator.engine import Engine
from orchestrator.engine.compiled import compile_journey
from orchestrator.measurement import dashboard
from orchestrator.measurement.kpis import Kpis
from orchestrator.measurement.map_svg import draw
from orchestrator.measurement.maps import END, START, edges, flow, journey_maps, structure
from orchestrator.measurement.report import kpis_of
from tests.helpers import OPEN_POLICY, ev, journey, run

SVG = "{http://www.w3.org/2000/svg}"

RICH = journey("""
id: rich
trigger: {event: cart_add}
reentry: always
exit_on: [purchase]
steps:
  - wait: 30m
  - id: vip-check
    if: {profile.cart_value: {gte: 100}}
    then:
      - {id: vip-mail, send: {channel: email, template: vip}}
      - {id: vip-wait, wait: 1h}
    else:
      - id: ab
        split:
          - {weight: 75, steps: [{id: mail-a, send: {channel: email, template: variant-a}}]}
          - {weight: 25, steps: []}
  - id: visit
    wait_for: {event: store_visit, timeout: 2d}
    on_event: [{id: bye, exit: true}]
  - {id: last-push, send: {channel: push, template: last-call}}
""")


def test_the_structure_of_a_journey_names_every_step_its_label_and_its_ways() -> None:
    spec = structure(compile_journey(RICH, Catalogue()))
    assert spec["steps"] == ["steps.0", "steps.1", "steps.2", "steps.3"]
    nodes = spec["nodes"]
    assert nodes["steps.0"] == {"name": "steps.0", "kind": "wait", "label": "wait 30m", "next": "steps.1",
                                "branches": []}  # fmt: skip
    assert nodes["steps.1"]["label"] == "if profile.cart_value gte 100"
    assert [(w["label"], w["steps"], w["to"]) for w in nodes["steps.1"]["branches"]] == [
        ("then", ["steps.1.then.0", "steps.1.then.1"], "steps.1.then.0"),
        ("else", ["steps.1.else.0"], "steps.1.else.0"),
    ]
    assert [(w["label"], w["to"]) for w in nodes["steps.1.else.0"]["branches"]] == [
        ("arm 1 (75%)", "steps.1.else.0.split.0.steps.0"), ("arm 2 (25%)", "steps.2")]  # an empty arm: on to visit
    assert nodes["steps.2"]["label"] == "wait for store_visit (2d)"
    assert nodes["steps.2.on_event.0"]["next"] is None and nodes["steps.3"]["label"] == "push · last-call"
    orjson.dumps(spec)  # plain JSON: the worker writes it to Redis
    found = {(e.source, e.target): e.label for e in edges(spec)}
    assert found == {
        (START, "steps.0"): "", ("steps.0", "steps.1"): "", ("steps.1", "steps.1.then.0"): "then",
        ("steps.1", "steps.1.else.0"): "else", ("steps.1.then.0", "steps.1.then.1"): "",
        ("steps.1.then.1", "steps.2"): "", ("steps.1.else.0", "steps.1.else.0.split.0.steps.0"): "arm 1 (75%)",
        ("steps.1.else.0", "steps.2"): "arm 2 (25%)", ("steps.1.else.0.split.0.steps.0", "steps.2"): "",
        ("steps.2", "steps.2.on_event.0"): "event", ("steps.2", "steps.3"): "timeout", ("steps.3", END): "",
    }  # fmt: skip


def record(kind: str, step: str | None = None, **fields: Any) -> dict[str, Any]:
    found = {"at": "2026-03-02T10:00:00Z", "customer": "c", "kind": kind, "journey": "rich", "version": 1, "run": 1,
             **fields}  # fmt: skip
    return found if step is None else {**found, "step": step}


def rich_counts() -> dict[str, Any]:
    """10 runs by hand: 4 VIPs (one leaves by purchase during vip-wait), 6 others split 4 / 2; of the 9 that reach
    visit, 3 come to the store (and exit), 5 time out, 1 is still waiting; mail-a is suppressed once."""
    records = [record("entered", holdout=False) for _ in range(10)]
    records += [record("step", "steps.0", type="wait") for _ in range(10)]
    records += [record("step", "vip-check", type="if") for _ in range(10)]
    records += [record("step", "vip-mail", type="send") for _ in range(4)]
    records += [record("sent", "vip-mail", channel="email", template="vip") for _ in range(4)]
    records += [record("step", "vip-wait", type="wait") for _ in range(4)]
    records += [record("exited", reason="exit_on:purchase")]
    records += [record("step", "ab", type="split") for _ in range(6)]
    records += [record("step", "mail-a", type="send") for _ in range(4)]
    records += [record("sent", "mail-a", channel="email", template="variant-a") for _ in range(3)]
    records += [record("suppressed", "mail-a", channel="email", template="variant-a", reason="no_consent")]
    records += [record("step", "visit", type="wait_for") for _ in range(9)]
    records += [record("matched", "visit", event_id="e") for _ in range(3)]
    records += [record("step", "bye", type="exit") for _ in range(3)] + [record("exited", reason="exit")] * 3
    records += [record("timed_out", "visit") for _ in range(5)]
    records += [record("step", "last-push", type="send") for _ in range(5)]
    records += [record("sent", "last-push", channel="push", template="last-call") for _ in range(5)]
    records += [record("exited", reason="completed") for _ in range(5)]
    kpis = Kpis()
    kpis.add_audit(records)
    return dict(kpis.summary(["rich"])["journeys"]["rich"])


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def test_the_svg_carries_the_kpi_counts_on_its_nodes_and_derives_its_edges() -> None:
    spec, counts = structure(compile_journey(RICH, Catalogue())), rich_counts()
    root = parse(draw("rich", spec, counts))
    assert root.get("data-chart") == "map-rich"
    nodes = {g.get("data-step"): g for g in root.iter(f"{SVG}g") if g.get("class") == "node"}
    assert set(nodes) == {"steps.0", "vip-check", "vip-mail", "vip-wait", "ab", "mail-a", "visit", "bye",
                          "last-push"}  # fmt: skip
    for name, g in nodes.items():
        assert int(g.get("data-reached") or -1) == counts["steps"][name]["reached"], name
    assert (nodes["mail-a"].get("data-sent"), nodes["mail-a"].get("data-suppressed")) == ("3", "1")
    texts = " ".join(t.text or "" for t in nodes["mail-a"].iter(f"{SVG}text"))
    assert "not sent: no_consent 1" in texts and "email · variant-a" in texts
    found = {(g.get("data-from"), g.get("data-to")): g.get("data-count") for g in root.iter(f"{SVG}g")
             if g.get("class") == "edge"}  # fmt: skip
    assert found == {
        (START, "steps.0"): "10", ("steps.0", "vip-check"): "10",
        ("vip-check", "vip-mail"): "4", ("vip-check", "ab"): "6",  # a step only one edge leads to: its reached
        ("vip-mail", "vip-wait"): "4",
        ("ab", "mail-a"): "4", ("ab", "visit"): "2",  # the empty arm: the split's runs minus the other arm's
        ("mail-a", "visit"): "4",  # an instant step passes every run on
        ("vip-wait", "visit"): "3",  # the rest of visit's 9: one run left vip-wait by exit_on
        ("visit", "bye"): "3", ("visit", "last-push"): "5",  # the wait_for's matched and timed-out runs
        ("last-push", END): "5",
    }  # fmt: skip
    terminals = {g.get("data-terminal"): g.get("data-count") for g in root.iter(f"{SVG}g")
                 if g.get("class") == "terminal"}  # fmt: skip
    assert terminals == {START: "10", END: "5"}


def test_what_cannot_be_known_is_drawn_as_unknown_not_guessed() -> None:
    twice = journey("""
id: twice
trigger: {event: cart_add}
steps:
  - id: branch
    if: {profile.cart_value: {gte: 100}}
    then: [{id: long, wait: 1d}]
    else: [{id: short, wait: 1h}]
  - {id: mail, send: {channel: email, template: t}}
""")
    spec = structure(compile_journey(twice, Catalogue()))
    reached = {"branch": 4, "long": 2, "short": 2, "mail": 3}
    journey_counts = {"entered": 4, "exited": {}, "steps": {name: {"reached": n} for name, n in reached.items()}}
    _, found = flow(spec, journey_counts)
    counts = {(e.source, e.target): e.count for e in found}
    # Both waits lead to mail (3 runs came): which one lost a run is not known.
    assert counts[("steps.0.then.0", "steps.1")] is None and counts[("steps.0.else.0", "steps.1")] is None
    root = parse(draw("twice", spec, journey_counts))
    unknown = [g for g in root.iter(f"{SVG}g") if g.get("class") == "edge" and g.get("data-count") == ""]
    assert len(unknown) == 2
    assert all("?" in (t.text or "") for g in unknown for t in g.iter(f"{SVG}text"))
    assert all(g.find(f"{SVG}title") is not None for g in unknown)  # says why


def test_a_simulated_journey_map_adds_up() -> None:
    """From the engine's own records: every edge's count is known, and the runs into each step are its count."""
    events = []
    for i in range(12):
        customer = f"c-{i}"
        events.append(ev("cart_add", "2026-03-02T10:00:00Z", customer, sku="A", price=150 if i % 3 == 0 else 20))
        if i % 4 == 0:
            events.append(ev("store_visit", "2026-03-02T13:00:00Z", customer, "store", store_id="milano"))
    result = run(RICH, events)
    engine = Engine([RICH], OPEN_POLICY)
    summary = kpis_of(result).summary(engine.step_order())
    spec = journey_maps(engine.latest)["rich"]
    figures, found = flow(spec, summary["journeys"]["rich"])
    assert all(edge.count is not None for edge in found)
    names = {path: node["name"] for path, node in spec["nodes"].items()}
    for path, f in figures.items():
        into = sum(edge.count or 0 for edge in found if edge.target == path)
        assert into == f["reached"] == summary["journeys"]["rich"]["steps"][names[path]]["reached"], path
    assert sum(edge.count or 0 for edge in found if edge.target == END) == summary["journeys"]["rich"]["exited"][
        "completed"]  # fmt: skip


def test_the_dashboard_draws_a_map_for_each_journey_it_is_given() -> None:
    spec = structure(compile_journey(RICH, Catalogue()))
    summary = Kpis().summary(["rich", "other"])
    page = dashboard.render(summary, maps={"rich": spec})
    assert page.count('data-chart="map-') == 1 and 'data-chart="map-rich"' in page
    assert "<script" not in page and "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert 'data-chart="map-' not in dashboard.render(summary)  # no structure, no map


def test_labels_of_waits_decisions_and_conditions() -> None:
    catalogue = Catalogue.model_validate({"offers": [{"id": "a", "channel": "email", "template": "x"},
                                                     {"id": "b", "channel": "email", "template": "y"}]})  # fmt: skip
    labelled = journey("""
id: labels
trigger: {event: identify}
steps:
  - wait_until: {time: "10:00", days: [mon, fri]}
  - wait_until: {at: profile.traits.appointment, offset: -1d}
  - wait_until: {anniversary: profile.traits.birthday, time: "09:00"}
  - id: pick
    decide: {offers: [a, b]}
    on_none: [{send: {channel: email, template: sorry}}]
  - if: {all: [{profile.traits.tier: gold}, {profile.lifetime_value: {gte: 500}}]}
    then: [exit]
""")
    spec = structure(compile_journey(labelled, catalogue))
    labels = {path: node["label"] for path, node in spec["nodes"].items()}
    assert labels == {
        "steps.0": "until 10:00 (mon, fri)", "steps.1": "until the time at profile.traits.appointment -1d",
        "steps.2": "until the anniversary of profile.traits.birthday at 09:00",
        "steps.3": "decide: pick 1 of 2 offer(s)", "steps.3.on_none.0": "email · sorry",
        "steps.4": "if (profile.traits.tier = gold and profile.lifetime_value gte 500)", "steps.4.then.0": "exit",
    }  # fmt: skip
    ways = {(e.source, e.target): e.label for e in edges(spec)}
    assert ways[("steps.3", "steps.4")] == "picked" and ways[("steps.3", "steps.3.on_none.0")] == "none"
    assert ways[("steps.3.on_none.0", "steps.4")] == "" and ways[("steps.4", END)] == "else"
    assert ("steps.4.then.0", END) not in ways  # an exit step ends the run: no edge to the end
    root = parse(draw("labels", spec, {"entered": 0}))
    assert len([g for g in root.iter(f"{SVG}g") if g.get("class") == "node"]) == 7
