"""`orchestrator report`: the KPIs of an event log, as the worker would count them, in the terminal.

The counts come from `simulate` (the oracle) folded by `orchestrator.measurement.kpis`, the code the worker runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from orchestrator.contract.conditions import Predicate
from orchestrator.measurement.audience import member_of
from orchestrator.measurement.kpis import Kpis, contribution
from orchestrator.measurement.kpis import key as counter_key
from orchestrator.measurement.occurrences import segment_counts
from orchestrator.simulate import Result

BAR_WIDTH = 24
NONE = "n/a"


def kpis_of(result: Result, segments: Mapping[str, Predicate] | None = None) -> Kpis:
    """The KPIs of a finished simulation: its audit records, then every final customer profile (and, given the
    engine's `segments`, each one's size as the worker counts it: as of the end of the log)."""
    kpis = Kpis()
    kpis.add_audit(result.audit)
    for key, state in result.states.items():
        kpis.add(contribution(state.profile))
        if segments:
            joined = member_of(segments, key, state.profile, result.last_event)
            kpis.add(dict(segment_counts(frozenset(), joined, counter_key)))
    return kpis


def _bar(value: float, largest: float, style: str = "cyan") -> Text:
    filled = 0 if largest <= 0 else round(BAR_WIDTH * value / largest)
    return Text("█" * filled + "·" * (BAR_WIDTH - filled), style=style)


def _pct(value: float | None) -> str:
    return NONE if value is None else f"{100 * value:.1f}%"


def _points(value: float | None) -> str:
    return NONE if value is None else f"{100 * value:+.1f} pts"


def _money(value: float | None) -> str:
    return NONE if value is None else f"{value:,.2f}"


def render(summary: dict[str, Any]) -> Group:
    """Every KPI table, in the order a marketer reads them: journeys, lift, cross-channel, value, coupons, offers."""
    parts: list[Any] = []
    journeys = Table(title="Journeys", title_justify="left")
    for column in ("journey", "entered", "active", "sends", "suppressed", "conversions", "exits"):
        journeys.add_column(column, justify="left" if column in ("journey", "exits") else "right",
                            no_wrap=column == "journey")
    for jid, j in summary["journeys"].items():
        exits = ", ".join(f"{reason} {n}" for reason, n in j["exited"].items()) or NONE
        journeys.add_row(jid, str(j["entered"]), str(j["active"]), str(sum(j["sends"].values())),
                         str(sum(j["suppressed"].values())), str(j["conversions"]), exits)  # fmt: skip
    parts.append(journeys)

    lift = Table(title="Treatment vs holdout (goal conversion)", title_justify="left")
    for column in ("journey", "treatment", "holdout", "lift", "95% CI", "relative"):
        lift.add_column(column, justify="left" if column == "journey" else "right", no_wrap=column == "journey")
    verdicts = []
    for jid, j in summary["journeys"].items():
        t, h, li = j["lift"]["treatment"], j["lift"]["holdout"], j["lift"]
        ci = NONE if li["ci95"] is None else f"{_points(li['ci95'][0])} to {_points(li['ci95'][1])}"
        lift.add_row(jid, f"{_pct(t['rate'])} ({t['converted']}/{t['entered']})",
                     f"{_pct(h['rate'])} ({h['converted']}/{h['entered']})", _points(li["absolute"]), ci,
                     _pct(li["relative"]))  # fmt: skip
        verdicts.append(Text.assemble((f"{jid}: ", "bold"), li["verdict"]))
    parts += [lift, *verdicts, *_programme(summary["programme"])]
    refused = _not_entered(summary["journeys"])
    if refused is not None:
        parts.append(refused)

    for jid, j in summary["journeys"].items():
        if not j["steps"]:
            continue
        funnel = Table(title=f"Funnel of {jid}", title_justify="left")
        for column in ("step", "reached", "", "sent", "suppressed"):
            funnel.add_column(column, justify="left" if column in ("step", "") else "right")
        largest = max([j["entered"], *(s["reached"] for s in j["steps"].values())])
        funnel.add_row("entered", str(j["entered"]), _bar(j["entered"], largest), "", "")
        for step, s in j["steps"].items():
            funnel.add_row(step, str(s["reached"]), _bar(s["reached"], largest), str(s["sent"]), str(s["suppressed"]))
        funnel.add_row("converted", str(j["conversions"]), _bar(j["conversions"], largest, "green"), "", "")
        parts.append(funnel)

    cross = summary["cross_channel"]
    paths = Table(title=f"Cross-channel conversion: {_pct(cross['rate'])} of {cross['conversions']} conversions "
                        f"used two or more channels", title_justify="left")  # fmt: skip
    paths.add_column("path")
    paths.add_column("conversions", justify="right")
    paths.add_column("")
    top = max([p["conversions"] for p in cross["top_paths"]] or [0])
    for path in cross["top_paths"]:
        paths.add_row(" → ".join(path["path"]), str(path["conversions"]), _bar(path["conversions"], top))
    parts.append(paths)

    clv = Table(title="Customer lifetime value", title_justify="left")
    for column in ("customers", "count", "mean", "median", "total", "mean"):
        clv.add_column(column, justify="left" if column == "customers" else "right")
    segments = (("all", "all"), ("single_channel", "single-channel"), ("multi_channel", "multi-channel"))
    largest_mean = max([summary["clv"][name]["mean"] or 0 for name, _ in segments])
    for name, label in segments:
        c = summary["clv"][name]
        clv.add_row(label, str(c["customers"]), _money(c["mean"]), _money(c["median"]), _money(c["total"]),
                    _bar(c["mean"] or 0, largest_mean, "green"))  # fmt: skip
    parts.append(clv)

    engagement = summary["engagement"]
    channels = Table(title=f"Engagement: {engagement['interactions_per_customer'] or 0} interactions per customer; "
                           f"distinct channels per customer", title_justify="left")  # fmt: skip
    channels.add_column("channels", justify="right")
    channels.add_column("customers", justify="right")
    channels.add_column("")
    histogram = engagement["channels_histogram"]
    for count, customers in histogram.items():
        channels.add_row(str(count), str(customers), _bar(customers, max(histogram.values())))
    parts.append(channels)

    coupons, mix = summary["coupons"], summary["channels"]
    money = Table(title="Coupons and channel mix", title_justify="left")
    money.add_column("measure")
    money.add_column("value", justify="right")
    money.add_row("coupons issued", str(coupons["issued"]))
    money.add_row("coupons redeemed", f"{coupons['redeemed']} ({_pct(coupons['redemption_rate'])})")
    money.add_row("in-store revenue from redeemed coupons", _money(coupons["revenue"]))
    for channel, n in mix.items():
        money.add_row(f"sends on {channel}", str(n))
    parts.append(money)

    if summary.get("offers"):
        parts.append(_offers(summary["offers"]))
    parts += _broadcasts(summary.get("broadcasts") or {}) + _segments(summary.get("segments") or {})

    if summary["days"]:
        days = Table(title="Per day (UTC)", title_justify="left")
        for column in ("day", "entered", "sent", "conversions", "coupons redeemed"):
            days.add_column(column, justify="left" if column == "day" else "right")
        for day, row in summary["days"].items():
            days.add_row(day, *(str(row[k]) for k in ("entered", "sent", "conversions", "coupons_redeemed")))
        parts.append(days)
    return Group(*parts)


def _interval(ci: list[float] | None, digits: int) -> str:
    return NONE if ci is None else f"{ci[0]:+,.{digits}f} to {ci[1]:+,.{digits}f}"


def _programme(programme: dict[str, Any]) -> list[Any]:
    """Treated customers against the global control group: per customer conversions and revenue (totals in
    brackets), and the lift of each, treated minus control, with its 95% interval."""
    table = Table(title="Programme vs global control group (per customer)", title_justify="left")
    for column in ("group", "customers", "conversions", "revenue"):
        table.add_column(column, justify="left" if column == "group" else "right")
    for group in ("treated", "control"):
        g = programme[group]
        per = NONE if g["conversions_per_customer"] is None else f"{g['conversions_per_customer']:.3f}"
        table.add_row(group, str(g["customers"]), f"{per} ({g['conversions']})",
                      f"{_money(g['revenue_per_customer'])} ({_money(g['revenue'])})")  # fmt: skip
    conversions, revenue = programme["conversions_per_customer"], programme["revenue_per_customer"]
    if not programme["control_group"]:
        return [table, Text.assemble(("programme: ", "bold"), conversions["verdict"])]

    def lift(figure: dict[str, Any], digits: int) -> str:
        shown = NONE if figure["lift"] is None else f"{figure['lift']:+,.{digits}f}"
        return shown if figure["ci95"] is None else f"{shown} (95% CI {_interval(figure['ci95'], digits)})"

    table.add_row("lift (treated - control)", "", lift(conversions, 3), lift(revenue, 2), style="bold")
    return [table, Text.assemble(("conversions: ", "bold"), conversions["verdict"]),
            Text.assemble(("revenue: ", "bold"), revenue["verdict"])]


def _not_entered(journeys: dict[str, Any]) -> Table | None:
    """Triggers that did not start a run, per journey and reason; None when every trigger started one."""
    rows = [(jid, j["not_entered"]) for jid, j in journeys.items() if j.get("not_entered")]
    if not rows:
        return None
    table = Table(title="Not entered: triggers that did not start a run", title_justify="left")
    for column in ("journey", "not entered", "by reason"):
        table.add_column(column, justify="right" if column == "not entered" else "left", no_wrap=column == "journey")
    for jid, reasons in rows:
        by = sorted(reasons.items(), key=lambda item: (-item[1], item[0]))
        table.add_row(jid, str(sum(reasons.values())), ", ".join(f"{reason} {n}" for reason, n in by))
    return table


def _offers(offers: dict[str, Any]) -> Table:
    """Per offer: sends, conversions (of the runs it was sent in), chosen against explored, and why it was out."""
    table = Table(title="Offers (decide steps): conversion of the runs each offer was sent in", title_justify="left")
    for column in ("offer", "sent", "converted", "rate", "", "chosen", "explored", "top out reason"):
        table.add_column(column, justify="left" if column in ("offer", "", "top out reason") else "right",
                         no_wrap=column == "offer")  # fmt: skip
    best = max([o["conversion_rate"] or 0 for o in offers.values()])

    def arm(figures: dict[str, Any]) -> str:
        return f"{_pct(figures['conversion_rate'])} ({figures['converted']}/{figures['sent']})"

    for offer, o in offers.items():
        out = sorted(o["out"].items(), key=lambda item: (-item[1], item[0]))
        top = f"{out[0][0].replace('_', ' ')} ({out[0][1]} of {o['candidate']})" if out else NONE
        table.add_row(offer, str(o["sent"]), str(o["converted"]), _pct(o["conversion_rate"]),
                      _bar(o["conversion_rate"] or 0, best, "green"), arm(o["chosen"]), arm(o["explore"]),
                      top)  # fmt: skip
    return table


def print_report(summary: dict[str, Any], console: Console | None = None) -> None:
    (console or Console()).print(render(summary))


def _reasons(counts: dict[str, int]) -> str:
    return ", ".join(f"{reason} {n}" for reason, n in sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def _broadcasts(broadcasts: dict[str, list[dict[str, Any]]]) -> list[Table]:
    """Per scheduled journey, per occurrence: who was in the audience and what became of them."""
    tables = []
    for jid, rows in broadcasts.items():
        table = Table(title=f"Broadcasts of {jid} (per occurrence)", title_justify="left")
        table.add_column("occurrence", no_wrap=True)
        for column in ("audience", "entered", "held out", "sent", "converted"):
            table.add_column(column, justify="right")
        table.add_column("suppressed")
        table.add_column("not entered")
        for row in rows:
            table.add_row(row["occurrence"], *(str(row[k]) for k in ("audience", "entered", "held_out", "sent",
                                                                      "converted")),
                          _reasons(row["suppressed"]) or NONE, _reasons(row["not_entered"]) or NONE)  # fmt: skip
        tables.append(table)
    return tables


def _segments(segments: dict[str, dict[str, int]]) -> list[Table]:
    """Each segment's size at the end of each day of the log."""
    if not segments:
        return []
    table = Table(title="Segments: size at the end of each day (UTC)", title_justify="left")
    table.add_column("day")
    for name in segments:
        table.add_column(name, justify="right")
    days = sorted({day for sizes in segments.values() for day in sizes})
    for day in days:
        table.add_row(day, *(f"{sizes.get(day, 0):,}" for sizes in segments.values()))
    return [table]
