"""The KPI dashboard: one self-contained HTML page with inline SVG charts (no script, no build, no CDN).

`orchestrator report --html FILE` writes it from an event log; the API serves the same page from the
worker's counts. Every bar carries `data-label` and `data-value`, so a test (or a curious person) can read
the numbers behind a chart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from orchestrator.measurement.map_svg import draw as journey_map

WIDTH = 520
ROW = 26
LABEL = 170

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1d2733;background:#f6f7f9}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px} h3{font-size:14px;margin:0 0 6px}
.grid{display:flex;flex-wrap:wrap;gap:16px} .card{background:#fff;border-radius:8px;padding:14px 16px;
box-shadow:0 1px 2px #0002} .kpi{font-size:26px;font-weight:600} .muted{color:#65717e;font-size:12px}
.verdict{max-width:520px;font-size:13px} .note{max-width:520px} svg text{font:12px system-ui,sans-serif;fill:#1d2733}
.map{margin-top:16px;overflow-x:auto}
"""


LOGIN_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign in: KPI dashboard</title>
<style>body{{font:15px system-ui,sans-serif;margin:48px}}input{{font:inherit;padding:6px;width:320px}}</style>
</head><body><h1>KPI dashboard</h1><p>{message}</p><form method="post" action="/login">
<label>API token <input type="password" name="token" autocomplete="current-password" autofocus></label>
<button type="submit">Open the dashboard</button></form></body></html>"""


def login_page(message: str) -> str:
    """The API's sign-in form for the dashboard (`GET /login`), saying `message`; it posts the token to /login."""
    return LOGIN_PAGE.format(message=escape(message))


def _number(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def bars(name: str, rows: Sequence[tuple[str, float]], color: str = "#3b7dd8", unit: str = "") -> str:
    """A horizontal bar chart, one row per (label, value)."""
    if not rows:
        return f'<p class="muted" data-chart="{escape(name)}">nothing yet</p>'
    largest = max(value for _, value in rows) or 1
    height = ROW * len(rows) + 4
    parts = [f'<svg data-chart="{escape(name)}" width="{WIDTH}" height="{height}" role="img" '
             f'aria-label="{escape(name)}">']  # fmt: skip
    for i, (label, value) in enumerate(rows):
        y = i * ROW + 2
        length = max(1.0, (WIDTH - LABEL - 90) * value / largest) if value else 0
        shown = f"{value:,.2f}" if isinstance(value, float) and not value.is_integer() else f"{value:,.0f}"
        parts.append(
            f'<g class="bar" data-label="{escape(label)}" data-value="{value}">'
            f'<text x="0" y="{y + 16}">{escape(label)}</text>'
            f'<rect x="{LABEL}" y="{y + 3}" width="{length:.1f}" height="{ROW - 8}" rx="3" fill="{color}"/>'
            f'<text x="{LABEL + length + 6:.1f}" y="{y + 16}">{shown}{unit}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def lift_chart(name: str, lift: dict[str, Any]) -> str:
    """Treatment and holdout conversion rates side by side, and the lift's 95% interval against zero."""
    rows = [("treatment", 100 * (lift["treatment"]["rate"] or 0)), ("holdout", 100 * (lift["holdout"]["rate"] or 0))]
    chart = bars(f"{name}-arms", rows, "#2f9e6e", "%")
    if lift["ci95"] is None:
        return chart
    low, high, diff = (100 * v for v in (*lift["ci95"], lift["absolute"]))
    return chart + interval(f"{name}-interval", diff, low, high, f"lift {diff:+.1f} pts")


def interval(name: str, diff: float, low: float, high: float, label: str, least: float = 1.0) -> str:
    """A difference as a dot on its 95% interval, against a dashed zero line (the axis spans at least `least`)."""
    span = max(abs(low), abs(high), least)

    def x(value: float) -> float:
        return float(LABEL + (WIDTH - LABEL - 40) * (value + span) / (2 * span))

    return (
        f'<svg data-chart="{escape(name)}" width="{WIDTH}" height="40" role="img" aria-label="lift interval"'
        f' data-low="{low:.4f}" data-high="{high:.4f}" data-lift="{diff:.4f}">'
        f'<text x="0" y="24">{escape(label)}</text>'
        f'<line x1="{x(0):.1f}" x2="{x(0):.1f}" y1="4" y2="36" stroke="#999" stroke-dasharray="3"/>'
        f'<line x1="{x(low):.1f}" x2="{x(high):.1f}" y1="20" y2="20" stroke="#1d2733" stroke-width="2"/>'
        f'<circle cx="{x(diff):.1f}" cy="20" r="5" fill="#d8663b"/></svg>'
    )


def _programme(programme: dict[str, Any]) -> str:
    """Treated customers against the global control group: the means per customer side by side, and each lift
    with its 95% interval; without a control group, a sentence instead of a lift."""
    treated, control = programme["treated"], programme["control"]
    cards = []
    for figure, title, digits in (("conversions_per_customer", "Conversions per customer", 3),
                                  ("revenue_per_customer", "Revenue per customer", 2)):  # fmt: skip
        rows = [("treated", treated[figure] or 0.0), ("control", control[figure] or 0.0)]
        lift = programme[figure]
        chart = bars(f"programme-{figure}", rows if programme["control_group"] else rows[:1], "#2f9e6e")
        if lift["ci95"] is not None:
            low, high = lift["ci95"]
            chart += interval(f"programme-{figure}-interval", lift["lift"], low, high,
                              f"lift {lift['lift']:+.{digits}f}", least=10.0 ** -digits)  # fmt: skip
        cards.append(_card(title, chart + f'<p class="verdict">{escape(lift["verdict"])}</p>'))
    state = "lift" if programme["control_group"] else "no-control"
    customers = (f'<p class="muted note">treated: {treated["customers"]} customers, control: '
                 f'{control["customers"]} customers (the global holdout), counted from their first marketing '
                 "journey on</p>")  # fmt: skip
    return (f'<section data-programme="{state}"><h2>Programme vs global control group</h2>{customers}'
            f'<div class="grid">{"".join(cards)}</div></section>')


def _card(title: str, body: str) -> str:
    return f'<div class="card"><h3>{escape(title)}</h3>{body}</div>'


def _journey(jid: str, j: dict[str, Any], structure: dict[str, Any] | None) -> str:
    funnel = [("entered", j["entered"])]
    for step, s in j["steps"].items():
        funnel.append((f"{step}: reached", s["reached"]))
        if s["sent"] or s["suppressed"]:
            funnel.append((f"{step}: sent", s["sent"]))
    funnel.append(("converted", j["conversions"]))
    lift = j["lift"]
    return (
        f'<section data-journey="{escape(jid)}"><h2>{escape(jid)}</h2><div class="grid">'
        + _card("Funnel", bars(f"funnel-{jid}", funnel))
        + _card("Treatment vs holdout: goal conversion",
                lift_chart(f"lift-{jid}", lift) + f'<p class="verdict">{escape(lift["verdict"])}</p>')
        + _card("Sends by channel", bars(f"sends-{jid}", list(j["sends"].items()), "#7a5cd6"))
        + _card("Suppressed, by reason", bars(f"suppressed-{jid}", list(j["suppressed"].items()), "#c9853a"))
        + _card("Not entered, by reason", bars(f"not-entered-{jid}", list(j["not_entered"].items()), "#8a94a0"))
        + "</div>" + ("" if structure is None else
                      '<div class="card map"><h3>Journey map: runs on each step and edge</h3>'
                      + journey_map(jid, structure, j) + "</div>")
        + "</section>"
    )  # fmt: skip


def _offers(offers: dict[str, Any]) -> str:
    """Conversion rate per offer, and per offer chosen (the best eligible) against explored (a uniform pick)."""
    if not offers:
        return ""
    rates = [(offer, 100 * (o["conversion_rate"] or 0)) for offer, o in offers.items() if o["sent"]]
    arms = [(f"{offer}: {label}", 100 * (o[how]["conversion_rate"] or 0)) for offer, o in offers.items()
            for how, label in (("chosen", "chosen"), ("explore", "explored")) if o[how]["sent"]]  # fmt: skip
    sends = [(offer, o["sent"]) for offer, o in offers.items()]
    note = ('<p class="muted note">conversion rate: runs that reached their goal within its window after the offer was '
            "sent, over its sends; explored: a uniformly chosen eligible offer instead of the best</p>")  # fmt: skip
    return (
        '<section data-offers="all"><h2>Offers</h2><div class="grid">'
        + _card("Conversion rate per offer", bars("offer-conversion", rates, "#2f9e6e", "%") + note)
        + _card("Explored vs chosen: conversion rate", bars("offer-explore-vs-chosen", arms, "#d8663b", "%"))
        + _card("Sends per offer", bars("offer-sends", sends, "#7a5cd6"))
        + "</div></section>"
    )


def _audiences(segments: dict[str, dict[str, int]], broadcasts: dict[str, list[dict[str, Any]]]) -> str:
    """Segment sizes (the latest of each: now, or the end of the log) and each broadcast's occurrences."""
    if not segments and not broadcasts:
        return ""
    cards = ""
    if segments:
        latest = [(name, list(sizes.values())[-1] if sizes else 0) for name, sizes in segments.items()]
        cards += _card("Segment sizes", bars("segment-sizes", latest, "#3b7dd8"))
    for jid, rows in broadcasts.items():
        audience = [(f"{row['occurrence']}: audience", row["audience"]) for row in rows]
        sent = [(f"{row['occurrence']}: sent", row["sent"]) for row in rows]
        cards += _card(f"Broadcasts of {jid}", bars(f"broadcast-{jid}", [x for pair in zip(audience, sent, strict=True)
                                                                           for x in pair], "#2f9e6e"))  # fmt: skip
    return f'<section data-audiences="all"><h2>Segments and broadcasts</h2><div class="grid">{cards}</div></section>'


def render(summary: dict[str, Any], title: str = "Journey orchestrator: KPIs", generated: str = "",
           maps: Mapping[str, dict[str, Any]] | None = None) -> str:  # fmt: skip
    """The whole page for a KPI summary (`measurement.kpis.summarize`); `maps` (`maps.journey_maps`) adds each
    journey's map."""
    maps = maps or {}
    cross, clv, engagement, coupons = (summary[k] for k in ("cross_channel", "clv", "engagement", "coupons"))
    headline = "".join(
        _card(label, f'<div class="kpi" data-kpi="{key}">{value}</div>')
        for key, label, value in (
            ("cross_channel_rate", "Cross-channel conversion", _pct(cross["rate"])),
            ("clv_mean", "Mean customer lifetime value", _number(clv["all"]["mean"], 2)),
            ("interactions_per_customer", "Interactions per customer",
             _number(engagement["interactions_per_customer"], 2)),
            ("coupon_redemption_rate", "Coupon redemption", _pct(coupons["redemption_rate"])),
        )
    )  # fmt: skip
    clv_rows = [(f"{label} (mean)", clv[key]["mean"] or 0.0) for key, label in
                (("single_channel", "single-channel"), ("multi_channel", "multi-channel"))]  # fmt: skip
    clv_rows += [(f"{label} (median)", clv[key]["median"] or 0.0) for key, label in
                 (("single_channel", "single-channel"), ("multi_channel", "multi-channel"))]  # fmt: skip
    paths = [(" → ".join(p["path"]), p["conversions"]) for p in cross["top_paths"]]
    channels = [(f"{k} channel{'s' if k != '1' else ''}", n) for k, n in engagement["channels_histogram"].items()]
    days = [(day, row["conversions"]) for day, row in summary["days"].items()]
    body = (
        f"<h1>{escape(title)}</h1><p class='muted'>{escape(generated)}</p>"
        f'<div class="grid">{headline}</div>'
        + _programme(summary["programme"])
        + "".join(_journey(jid, j, maps.get(jid)) for jid, j in summary["journeys"].items())
        + '<h2>Across channels</h2><div class="grid">'
        + _card("Channel mix (sends)", bars("channel-mix", list(summary["channels"].items()), "#7a5cd6"))
        + _card("Top cross-channel paths to conversion", bars("top-paths", paths, "#2f9e6e"))
        + _card("Customer lifetime value: single vs multi-channel", bars("clv", clv_rows, "#2f9e6e"))
        + _card("Distinct channels per customer", bars("channels-per-customer", channels))
        + _card("Conversions per day", bars("conversions-per-day", days))
        + _card("Coupons", bars("coupons", [("issued", coupons["issued"]), ("redeemed", coupons["redeemed"])],
                                "#c9853a")
                + f'<p>in-store revenue from redeemed coupons: <b data-kpi="coupon_revenue">'
                  f'{_number(coupons["revenue"], 2)}</b></p>')
        + "</div>"
        + _offers(summary.get("offers") or {})
        + _audiences(summary.get("segments") or {}, summary.get("broadcasts") or {})
    )  # fmt: skip
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<style>{STYLE}</style></head><body>{body}</body></html>")  # fmt: skip
