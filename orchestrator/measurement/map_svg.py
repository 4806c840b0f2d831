"""A journey map as inline SVG: its steps top-down, a column per branch, the runs on every node and edge.

No script and no stylesheet of its own: the dashboard's page embeds it as it is. Every node is
`<g class="node" data-step="NAME" data-reached="N">` and every edge `<g class="edge" data-from data-to
data-count>` (names, or `#start` / `#end`; an empty `data-count` is an edge whose runs cannot be known), so a test
reads the numbers behind the picture. The flow and its counts come from `orchestrator.measurement.maps`.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from orchestrator.measurement.maps import END, START, Edge, flow

NODE_W, NODE_H = 262, 66
COLUMN = 290  # a column's width
ROW = 124  # a row's height: a node and the gap below it
BEND = 18  # how far below a node (or above the next) an edge turns
MARGIN = 16
CHARS = 42  # a line of text in a node, at 11px
KIND_COLOURS = {
    "wait": ("#eef3fa", "#7f9cc7"), "wait_until": ("#eef3fa", "#7f9cc7"), "wait_for": ("#eef3fa", "#4f79b5"),
    "send": ("#f2edfc", "#7a5cd6"), "decide": ("#fdf2e6", "#c9853a"), "if": ("#e9f5ef", "#2f9e6e"),
    "split": ("#e9f5ef", "#2f9e6e"), "exit": ("#fcebe8", "#c0503b"), "terminal": ("#ffffff", "#1d2733"),
}  # fmt: skip


def _short(text: str, limit: int = CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _by(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{reason} {n}" for reason, n in sorted(counts.items(), key=lambda item: (-item[1], item[0])))


class _Layout:
    """Positions (column, row) of the steps: a list goes down its column; a branching step's ways sit side by side
    below it, each as wide as it needs (an empty way still takes a column: its edge runs down it); the next step
    comes below the deepest way."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        self.nodes = spec["nodes"]
        self.at: dict[str, tuple[int, int]] = {}
        self.lanes: dict[str, int] = {}  # a way (`path#i`) -> its column
        rows, self.columns = self._place(spec["steps"], 0, 1)
        self.rows = rows + 2  # the entry above, the end below
        self.at[START], self.at[END] = (0, 0), (0, rows + 1)

    def _place(self, steps: list[str], column: int, row: int) -> tuple[int, int]:
        r, width = row, 1
        for path in steps:
            self.at[path] = (column, r)
            ways = self.nodes[path]["branches"]
            if not ways:
                r += 1
                continue
            c, depth, ends = column, 0, set()
            for i, way in enumerate(ways):
                if not way["steps"] and way["to"] in ends:
                    continue  # the same edge as an earlier way (`maps.edges` made them one)
                ends.add(way["to"])
                rows, cols = self._place(way["steps"], c, r + 1) if way["steps"] else (0, 1)
                self.lanes[f"{path}#{i}"] = c
                depth, c = max(depth, rows), c + cols
            width = max(width, c - column)
            r += 1 + depth
        return r - row, width


def _x(column: int) -> float:
    return MARGIN + column * COLUMN + NODE_W / 2


def _y(row: int) -> float:
    return MARGIN + row * ROW


def _box(x: float, y: float, kind: str, lines: list[tuple[str, str]], tip: str) -> str:
    fill, stroke = KIND_COLOURS.get(kind, KIND_COLOURS["terminal"])
    radius = 20 if kind == "terminal" else 6
    parts = [f"<title>{escape(tip)}</title>",
             f'<rect x="{x - NODE_W / 2:.1f}" y="{y:.1f}" width="{NODE_W}" height="{NODE_H}" rx="{radius}" '
             f'fill="{fill}" stroke="{stroke}" stroke-width="1.5"/>']  # fmt: skip
    for i, (text, weight) in enumerate(lines[:4]):
        size = 12 if i == 0 else 11
        parts.append(f'<text x="{x - NODE_W / 2 + 8:.1f}" y="{y + 16 + 15 * i:.1f}" '
                     f'style="font-size:{size}px;font-weight:{weight}">{escape(_short(text))}</text>')  # fmt: skip
    return "".join(parts)


def _node(path: str, node: Mapping[str, Any], f: Mapping[str, Any], x: float, y: float) -> str:
    counts = f"reached {f['reached']}"
    if node["kind"] == "send" or node["kind"] == "decide":
        counts += f" · sent {f['sent']}" + (f" · suppressed {f['suppressed']}" if f["suppressed"] else "")
    elif node["kind"] == "wait_for":
        counts += f" · came {f['matched']} · timed out {f['timed_out']}"
    elif node["kind"] == "exit":
        counts = f"exited {f['reached']}"
    lines = [(node["name"], "600"), (node["label"], "400"), (counts, "600")]
    if f["suppressed_by"]:
        lines.append(("not sent: " + _by(f["suppressed_by"]), "400"))
    if f["exited"]:
        lines.append(("exited: " + _by(f["exited"]), "400"))
    tip = " | ".join([*(text for text, _ in lines), f"path {path}"])
    return (f'<g class="node" data-step="{escape(node["name"])}" data-path="{escape(path)}" '
            f'data-kind="{node["kind"]}" data-reached="{f["reached"]}" data-sent="{f["sent"]}" '
            f'data-suppressed="{f["suppressed"]}">{_box(x, y, node["kind"], lines, tip)}</g>')  # fmt: skip


def _terminals(journey: Mapping[str, Any], layout: _Layout) -> str:
    entered = journey.get("entered", 0)
    holdout = journey.get("lift", {}).get("holdout", {}).get("entered", 0)
    refused = journey.get("not_entered", {})
    start = [("entry", "600"), (f"entered {entered}" + (f" (holdout {holdout})" if holdout else ""), "600")]
    if refused:
        start.append((f"not entered {sum(refused.values())}: {_by(refused)}", "400"))
    exited = dict(journey.get("exited", {}))
    completed = exited.pop("completed", 0)
    end = [("end", "600"), (f"completed {completed}", "600"), (f"still in the journey {journey.get('active', 0)}",
                                                                  "400")]  # fmt: skip
    if exited:
        end.append((f"other exits: {_by(exited)}", "400"))
    parts = []
    for name, lines, count in ((START, start, entered), (END, end, completed)):
        column, row = layout.at[name]
        parts.append(f'<g class="terminal" data-terminal="{name}" data-count="{count}">'
                     f'{_box(_x(column), _y(row), "terminal", lines, " | ".join(t for t, _ in lines))}</g>')
    return "".join(parts)


def _edge(edge: Edge, layout: _Layout, names: Mapping[str, str], largest: int) -> str:
    (sc, sr), (tc, tr) = layout.at[edge.source], layout.at[edge.target]
    sx, tx = _x(sc), _x(tc)
    top, bottom = _y(sr) + NODE_H, _y(tr)
    # A branch's edge turns into its way's column; any other runs down its source's column, then across.
    lane = sx if edge.lane is None else _x(layout.lanes[edge.lane])
    points = [(sx, top), (sx, top + BEND), (lane, top + BEND), (lane, bottom - BEND), (tx, bottom - BEND),
              (tx, bottom)]  # fmt: skip
    if lane == sx:
        points = [(sx, top), (sx, bottom - BEND), (tx, bottom - BEND), (tx, bottom)]
    kept = [p for i, p in enumerate(points) if i == 0 or p != points[i - 1]]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in kept)
    known = edge.count is not None
    width = 1.5 + (5 * (edge.count or 0) / largest if known and largest else 0)
    style = f'stroke="#56616d" stroke-width="{width:.1f}"' if known else 'stroke="#9aa3ad" stroke-dasharray="4 3"'
    shown = str(edge.count) if known else "?"
    text = f"{edge.label} · {shown}" if edge.label else shown
    label_x, label_y = lane + 6, ((top + bottom) / 2 + 4 if lane != sx else bottom - BEND - 4)
    tip = "" if known else ("<title>not counted: runs may still be waiting at the step before, or have left it by "
                            "exit_on</title>")  # fmt: skip
    return (f'<g class="edge" data-from="{escape(names.get(edge.source, edge.source))}" '
            f'data-to="{escape(names.get(edge.target, edge.target))}" data-count="{edge.count if known else ""}" '
            f'data-label="{escape(edge.label)}">{tip}<polyline points="{line}" fill="none" {style} '
            f'marker-end="url(#arrow)"/><text x="{label_x:.1f}" y="{label_y:.1f}" style="font-size:11px;fill:#3b4550" '
            f'stroke="#ffffff" stroke-width="3" paint-order="stroke">{escape(text)}</text></g>')  # fmt: skip


def draw(jid: str, spec: Mapping[str, Any], journey: Mapping[str, Any]) -> str:
    """The map of one journey: its flow (`maps.structure`) with its KPIs (`kpis.summarize`'s journey)."""
    figures, found = flow(spec, journey)
    layout = _Layout(spec)
    names = {path: node["name"] for path, node in spec["nodes"].items()}
    largest = max([edge.count or 0 for edge in found] or [0])
    width = 2 * MARGIN + layout.columns * COLUMN
    height = 2 * MARGIN + (layout.rows - 1) * ROW + NODE_H
    marker = f"arrow-{jid}"
    body = "".join(_edge(edge, layout, names, largest) for edge in found).replace("url(#arrow)", f"url(#{marker})")
    nodes = "".join(_node(path, node, figures[path], _x(layout.at[path][0]), _y(layout.at[path][1]))
                    for path, node in spec["nodes"].items())  # fmt: skip
    return (
        f'<svg data-chart="map-{escape(jid)}" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="journey map of {escape(jid)}">'
        f'<defs><marker id="{escape(marker)}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="9" '
        f'markerHeight="9" markerUnits="userSpaceOnUse" orient="auto-start-reverse">'
        f'<path d="M0,0 L10,5 L0,10 z" fill="#56616d"/></marker></defs>'
        f"{body}{_terminals(journey, layout)}{nodes}</svg>"
    )
