"""Journey maps: each journey's flow of steps as plain data, and the runs that took each of its edges.

`journey_maps` turns the compiled journeys (`Engine.latest`) into JSON (the worker writes it to Redis for the
API's dashboard, `report --html` takes it from its own engine); `flow` puts the KPI counts (`kpis.summarize`,
one journey) on it. `map_svg.draw` draws the result.

A node's count is its `reached` (`step` records under its name). An edge's count is derived: a `wait_for`'s
branches are its `matched` and `timed_out` runs; an edge into a step that only it leads to carries that step's
`reached`; an instant step (send, decide, if, split) passes on every run it got; the runs into a step (or into
the end: `completed`) add up to its count. What none of these settles stays unknown (None), never guessed: runs
may still be waiting on a step, or leave it by `exit_on`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.engine.compiled import CompiledJourney, Node

START, END = "#start", "#end"  # never a step name: ids are [a-z0-9-], paths steps.N...
INSTANT = ("send", "decide", "if", "split")  # a run leaves these at once (a send held by quiet hours: later)


def _duration(ms: int) -> str:
    parts, rest = [], ms // 1000
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(parts) or "0s"


def _value(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(map(_value, value)) + "]"
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    return str(value)


def condition_text(cond: Any) -> str:
    """`profile.lifetime_value gte 500 and ...`, short, for a node's label."""
    if not isinstance(cond, Mapping):
        return str(cond)
    parts = []
    for path, test in cond.items():
        if path in ("all", "any") and isinstance(test, list):
            parts.append("(" + (" and " if path == "all" else " or ").join(map(condition_text, test)) + ")")
        elif path == "not":
            parts.append(f"not {condition_text(test)}")
        elif isinstance(test, Mapping):
            parts.extend(f"{path} {op} {_value(value)}" for op, value in test.items())
        else:
            parts.append(f"{path} = {_value(test)}")
    return " and ".join(parts)


def _spec_step(compiled: CompiledJourney, path: str) -> Any:
    """The YAML step at a path (`steps.3.then.0`, `steps.5.split.1.steps.0`)."""
    parts = path.split(".")
    found: Any = compiled.spec
    i = 0
    while i < len(parts):
        name = "else_" if parts[i] == "else" else parts[i]
        found = getattr(found, name)[int(parts[i + 1])]
        i += 2
    return found


def _label(node: Node, step: Any) -> str:
    kind = node.kind
    if kind == "wait":
        return f"wait {_duration(node.duration)}"
    if kind == "wait_until":
        until = step.wait_until
        offset = until.offset
        shift = f" {'-' if offset < 0 else '+'}{_duration(abs(offset))}" if offset else ""
        if until.at is not None:
            return f"until the time at {until.at}{shift}"
        if until.anniversary is not None:
            return f"until the anniversary of {until.anniversary} at {until.clock}{shift}"
        days = until.weekdays
        return f"until {until.time}" + (f" ({', '.join(days)})" if len(days) < 7 else "")
    if kind == "wait_for":
        where = f" where {condition_text(step.wait_for.where)}" if step.wait_for.where else ""
        return f"wait for {node.event} ({_duration(node.duration)}){where}"
    if kind == "send":
        assert node.send is not None
        return f"{node.send.channel} · {node.send.template}" + (" + coupon" if node.send.coupon else "")
    if kind == "decide":
        return f"decide: pick {node.pick} of {len(node.offers)} offer(s)"
    if kind == "if":
        return f"if {condition_text(step.if_)}"
    if kind == "split":
        shares, before = [], 0.0
        for cumulative, _ in node.arms:
            shares.append(f"{100 * (cumulative - before):.0f}%")
            before = cumulative
        return "split " + " / ".join(shares)
    return "exit"


def _steps(nodes: Mapping[str, Node], base: str) -> list[str]:
    """The paths of the list of steps at `base` (`steps`, `steps.2.on_event`), in order."""
    found, i = [], 0
    while f"{base}.{i}" in nodes:
        found.append(f"{base}.{i}")
        i += 1
    return found


def _branches(node: Node, nodes: Mapping[str, Node]) -> list[dict[str, Any]]:
    """A branching step's ways on: each with its label, its own steps and where it goes first."""
    p = node.path

    def way(label: str, base: str | None, to: str | None) -> dict[str, Any]:
        return {"label": label, "steps": [] if base is None else _steps(nodes, base), "to": to}

    if node.kind == "wait_for":
        return [way("event", f"{p}.on_event", node.branch_a), way("timeout", f"{p}.on_timeout", node.branch_b)]
    if node.kind == "if":
        return [way("then", f"{p}.then", node.branch_a), way("else", f"{p}.else", node.branch_b)]
    if node.kind == "decide":
        return [way("picked", None, node.next), way("none", f"{p}.on_none", node.branch_b)]
    if node.kind == "split":
        before, ways = 0.0, []
        for i, (cumulative, first) in enumerate(node.arms):
            ways.append(way(f"arm {i + 1} ({100 * (cumulative - before):.0f}%)", f"{p}.split.{i}.steps", first))
            before = cumulative
        return ways
    return []


def structure(compiled: CompiledJourney) -> dict[str, Any]:
    """One journey's flow as JSON: its top-level steps, and per step path its name, kind, label, the step after
    it and its branches."""
    nodes = compiled.nodes
    return {
        "version": compiled.spec.version,
        "steps": _steps(nodes, "steps"),
        "nodes": {path: {"name": node.name, "kind": node.kind, "label": _label(node, _spec_step(compiled, path)),
                         "next": None if node.kind == "exit" else node.next, "branches": _branches(node, nodes)}
                  for path, node in nodes.items()},
    }  # fmt: skip


def journey_maps(latest: Mapping[str, CompiledJourney]) -> dict[str, dict[str, Any]]:
    """Every journey's map (its latest version), by id."""
    return {jid: structure(compiled) for jid, compiled in sorted(latest.items())}


# ------------------------------------------------------------------------------------------- counts


@dataclass(slots=True)
class Edge:
    source: str  # a step path, or START
    target: str  # a step path, or END
    label: str
    lane: str | None = None  # a branch's way (source path and index), for drawing
    count: int | None = None


def edges(spec: Mapping[str, Any]) -> list[Edge]:
    """The map's edges: the entry, each step to the next, each branch to its first step (or to where the branching
    step continues, for an empty branch); ways that share both ends are one edge."""
    nodes = spec["nodes"]
    found: dict[tuple[str, str], Edge] = {}

    def add(source: str, target: str | None, label: str, lane: str | None = None) -> None:
        to = END if target is None else target
        if (source, to) in found:
            edge = found[(source, to)]
            edge.label = " / ".join(part for part in (edge.label, label) if part)
        else:
            found[(source, to)] = Edge(source, to, label, lane)

    add(START, spec["steps"][0] if spec["steps"] else None, "")
    for path, node in nodes.items():
        if node["branches"]:
            for i, way in enumerate(node["branches"]):
                add(path, way["to"], way["label"], f"{path}#{i}")
        elif node["kind"] != "exit":
            add(path, node["next"], "")
    return list(found.values())


def flow(spec: Mapping[str, Any], journey: Mapping[str, Any]) -> tuple[dict[str, dict[str, Any]], list[Edge]]:
    """Each step's figures (by path; zeros for a step no run reached) and the edges with what their counts can be
    known to be (module doc)."""
    zero = {"reached": 0, "sent": 0, "suppressed": 0, "suppressed_by": {}, "matched": 0, "timed_out": 0, "exited": {}}
    steps = journey.get("steps", {})
    figures = {path: {**zero, **steps.get(node["name"], {})} for path, node in spec["nodes"].items()}
    found = edges(spec)
    incoming: dict[str, list[Edge]] = {}
    outgoing: dict[str, list[Edge]] = {}
    for edge in found:
        incoming.setdefault(edge.target, []).append(edge)
        outgoing.setdefault(edge.source, []).append(edge)
    for edge in found:
        if edge.source == START:
            edge.count = journey.get("entered", 0)
        elif spec["nodes"][edge.source]["kind"] == "wait_for":
            ways = edge.label.split(" / ")
            f = figures[edge.source]
            edge.count = ("event" in ways) * f["matched"] + ("timeout" in ways) * f["timed_out"]

    def total(target: str) -> int:
        return int(journey.get("exited", {}).get("completed", 0)) if target == END else int(figures[target]["reached"])

    def settle(group: list[Edge], whole: int) -> bool:
        unknown = [edge for edge in group if edge.count is None]
        if len(unknown) != 1:
            return False
        unknown[0].count = max(0, whole - sum(edge.count or 0 for edge in group))
        return True

    changed = True
    while changed:
        changed = False
        for target, into in incoming.items():
            changed |= settle(into, total(target))  # the runs into a step add up to its count
        for source, out in outgoing.items():
            if source != START and spec["nodes"][source]["kind"] in INSTANT:
                changed |= settle(out, figures[source]["reached"])  # an instant step passes every run on
    return figures, found
