"""Omnichannel KPIs: one fold over what the engine decides, the same for `report` and the worker.

Everything is a count under a flat string key in a `Counter`, so partial results just add up: per day and in
total, per partition in the worker, per log in `report`. Two kinds of input feed it:

- audit records (`journeys.audit`, `simulate --audit`): journey funnels, sends, suppressions, exits,
  conversions by arm (treatment or holdout) with their channel paths, coupons. Each also counts under its day.
  Offers (`decide` steps) count per offer only, never per day: offers times days would be too many counters.
- customer profiles: a customer's contribution (lifetime value, interactions, channels used) is counted as
  `contribution(after) - contribution(before)` whenever a profile changes, so the totals always describe
  every customer's latest profile, whatever the order of updates.

`summarize` turns the counts into the figures people read: rates, the lift over the holdout with its 95%
interval, medians, top paths. Money is counted in cents, so sums stay exact integers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from orchestrator.engine.outcome import Record
from orchestrator.measurement.lift import GROUPS, lift, programme
from orchestrator.measurement.lift import rate as _rate
from orchestrator.measurement.occurrences import occurrence_counts, summarize_occurrences

SEP = "\x1f"  # never in a journey id, step id, channel or reason
DAY = "day"
TOP_PATHS = 10
OFFER = "offer"
AT = "at"  # per-step details for the journey maps: key("j", journey, AT, step, kind, reason?)
PROGRAMME = "programme"  # key(PROGRAMME, treated | control, figure): the programme against the global control group
HOW = ("chosen", "explore")  # how a decision picked an offer: the best eligible one, or a uniformly chosen one


def key(*parts: object) -> str:
    return SEP.join(map(str, parts))


def _cents(value: float) -> int:
    return round(value * 100)


def _arm(record: Record) -> str:
    return "holdout" if record.get("holdout") else "treatment"


def audit_keys(record: Record) -> list[str]:
    """The counters one audit record adds 1 to (before the per-day copies)."""
    kind = record["kind"]
    journey = record.get("journey")
    if kind == "entered":
        return [key("j", journey, "entered"), key("j", journey, "entered", _arm(record))]
    if kind == "step":
        return [key("j", journey, "step", record["step"], "reached")]
    if kind == "sent":
        return [key("j", journey, "sent", record["channel"]), key("j", journey, "step", record["step"], "sent"),
                key("sent", record["channel"])]  # fmt: skip
    if kind == "suppressed":
        return [key("j", journey, "suppressed", record["reason"]),
                key("j", journey, "step", record["step"], "suppressed")]  # fmt: skip
    if kind == "exited":
        return [key("j", journey, "exited", record["reason"])]
    if kind == "converted":
        path = record.get("path") or []
        found = [key("j", journey, "converted", _arm(record)), key("conversions")]
        if len(set(path)) >= 2:
            found.append(key("conversions", "cross_channel"))
        if path:
            found.append(key("path", ">".join(path)))
        return found
    if kind == "coupon_redeemed":
        return [key("coupons", "redeemed"), key("j", journey, "coupons", "redeemed")]
    return []


def _how(record: Mapping[str, Any]) -> str:
    return "explore" if record.get("explore") else "chosen"


def offer_keys(record: Record) -> list[str]:
    """The per-offer counters one audit record adds 1 to (no per-day copies): sends and conversions split by how
    the offer was picked (their totals are the sums), and each decision's candidates, out reasons and picks."""
    kind = record["kind"]
    if kind == "sent" and record.get("offer"):
        return [key(OFFER, record["offer"], "sent", _how(record))]
    if kind == "decided":
        found = []
        for candidate in record.get("candidates") or ():
            found.append(key(OFFER, candidate["offer"], "candidate"))
            if candidate.get("out"):
                found.append(key(OFFER, candidate["offer"], "out", candidate["out"]))
        return found + [key(OFFER, offer, "picked") for offer in record.get("picked") or ()]
    if kind == "converted":
        # A run converts once: an offer sent twice in it (the same way) counts once.
        sent = {(sent["offer"], _how(sent)) for sent in record.get("offers") or ()}
        return [key(OFFER, offer, "converted", how) for offer, how in sorted(sent)]
    return []


def detail_keys(record: Record) -> list[str]:
    """The totals one audit record adds 1 to with no per-day copies: triggers that started no run, by reason, and
    per-step details for the journey maps (suppressions by reason, a `wait_for`'s matched and timed-out runs, exits
    that name their step)."""
    kind, step = record["kind"], record.get("step")
    if kind == "not_entered":
        return [key("j", record.get("journey"), "not_entered", record["reason"])]
    if step is None or kind not in ("suppressed", "matched", "timed_out", "exited"):
        return []
    where = key("j", record.get("journey"), AT, step, kind)
    return [where] if kind in ("matched", "timed_out") else [key(where, record["reason"])]


def audit_counts(record: Record) -> Counter[str]:
    """What one audit record adds: its counters, in total and under its (UTC) day, and money in cents."""
    counts: Counter[str] = Counter()
    _add_audit(counts, record)
    return counts


def _add_audit(counts: dict[str, int], record: Record) -> None:
    day = key(DAY, str(record.get("at", ""))[:10])
    for name in audit_keys(record):
        counts[name] = counts.get(name, 0) + 1
        daily = day + SEP + name
        counts[daily] = counts.get(daily, 0) + 1
    for name in (*offer_keys(record), *detail_keys(record)):
        counts[name] = counts.get(name, 0) + 1
    for name, n in occurrence_counts(record, key):
        counts[name] = counts.get(name, 0) + n
    kind = record["kind"]
    if kind == "sent" and record.get("coupon"):
        name = key("coupons", "issued")
        counts[name] = counts.get(name, 0) + 1
    if kind in ("coupon_redeemed", "coupon_revenue") and record.get("value") is not None:
        cents = _cents(record["value"])
        for name in (key("coupons", "revenue_cents"), key(day, "coupons", "revenue_cents")):
            counts[name] = counts.get(name, 0) + cents


def _contribution(profile: Mapping[str, Any]) -> dict[str, int]:
    since = profile.get("programme")
    channels = len(profile.get("channels", ()))
    clv = _cents(profile.get("lifetime_value", 0))
    interactions = sum(profile.get("events", {}).values())
    if since is None:
        return dict(_figures(channels, clv, interactions, None, 0, 0))
    conversions, cents = int(since.get("conversions", 0)), _cents(since.get("revenue", 0))
    return dict(_figures(channels, clv, interactions, bool(since.get("control")), conversions, cents))


@lru_cache(maxsize=4096)
def _figures(
    channels: int, clv: int, interactions: int, control: bool | None, conversions: int, cents: int
) -> tuple[tuple[str, int], ...]:
    """A customer's contribution from the few numbers it depends on: every step computes it twice (before and
    after), and most customers share their numbers with many others."""
    segment = "multi" if channels >= 2 else "single"
    found = {
        "customers": 1,
        key("customers", segment): 1,
        key("clv", segment, "cents"): clv,
        key("clv", segment, "at", clv): 1,
        "interactions": interactions,
        key("interactions", "at", interactions): 1,
        key("channels", "at", channels): 1,
    }
    if control is not None:  # in the programme since the first marketing-journey entry: treated or control
        group = GROUPS[1] if control else GROUPS[0]
        # Squares of revenue in whole units, rounded: every counter stays a 64-bit integer (the worker's tables).
        found.update({key(PROGRAMME, group, "customers"): 1, key(PROGRAMME, group, "conversions"): conversions,
                      key(PROGRAMME, group, "conversions_sq"): conversions * conversions,
                      key(PROGRAMME, group, "revenue_cents"): cents,
                      key(PROGRAMME, group, "revenue_sq"): round((cents / 100) ** 2)})  # fmt: skip
    return tuple(found.items())


def contribution(profile: Mapping[str, Any] | None) -> Counter[str]:
    """One customer's share of the customer-level KPIs (nothing for a customer that is gone)."""
    return Counter() if profile is None else Counter(_contribution(profile))


def change(before: Counter[str], after: Mapping[str, Any] | None, trail: Iterable[tuple[int, Record]]) -> Counter[str]:
    """What one step of a customer adds: the profile's new contribution minus its old one (`before`, taken with
    `contribution` before the engine ran), plus the step's audit records (with their times). Zero counts dropped."""
    delta = {} if after is None else _contribution(after)
    for name, n in before.items():
        delta[name] = delta.get(name, 0) - n
    for _, record in trail:
        _add_audit(delta, record)
    return Counter({name: n for name, n in delta.items() if n})


class Kpis:
    """The running counts; `add` folds a Counter in, keeping negatives (a customer moving between segments)."""

    def __init__(self, counts: Mapping[str, int] | None = None) -> None:
        self.counts: Counter[str] = Counter(counts or {})

    def add(self, counts: Mapping[str, int]) -> None:
        for name, n in counts.items():
            total = self.counts[name] + n
            if total:
                self.counts[name] = total
            else:
                del self.counts[name]

    def add_audit(self, records: Iterable[Record]) -> None:
        for record in records:
            self.add(audit_counts(record))

    def summary(self, journeys: Mapping[str, Sequence[str]] | Iterable[str] = ()) -> dict[str, Any]:
        return summarize(self.counts, journeys)


# ------------------------------------------------------------------------------------------- summary


def _under(counts: Mapping[str, int], prefix: str) -> dict[str, int]:
    """`{rest: n}` for every key `prefix SEP rest` (rest without further separators)."""
    start = prefix + SEP
    found = {}
    for name, n in counts.items():
        if name.startswith(start) and SEP not in name[len(start) :]:
            found[name[len(start) :]] = n
    return found


def _median(histogram: Mapping[int, int]) -> float | None:
    """The median of values given as {value: how many}; the mean of the two middle ones for an even count."""
    total = sum(histogram.values())
    if total <= 0:
        return None
    middle = [(total - 1) // 2, total // 2]
    found: list[int] = []
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        while len(found) < 2 and middle[len(found)] < seen:
            found.append(value)
    return (found[0] + found[1]) / 2


def _clv(counts: Mapping[str, int], segments: tuple[str, ...]) -> dict[str, Any]:
    customers = sum(counts.get(key("customers", s), 0) for s in segments)
    cents = sum(counts.get(key("clv", s, "cents"), 0) for s in segments)
    histogram: Counter[int] = Counter()
    for s in segments:
        for value, n in _under(counts, key("clv", s, "at")).items():
            histogram[int(value)] += n
    median = _median(histogram)
    return {"customers": customers, "mean": round(cents / customers / 100, 2) if customers else None,
            "median": None if median is None else round(median / 100, 2), "total": round(cents / 100, 2)}  # fmt: skip


def _histogram(counts: Mapping[str, int], prefix: str) -> dict[str, int]:
    """`{"value": customers}` in increasing value (string keys: it is JSON)."""
    return {str(value): n for value, n in sorted((int(v), n) for v, n in _under(counts, prefix).items() if n)}


def summarize(counts: Mapping[str, int], journeys: Mapping[str, Sequence[str]] | Iterable[str] = ()) -> dict[str, Any]:
    """The KPI report (JSON-ready) from the counts. `journeys` are listed even with no activity yet; given as
    {journey: step names in order}, their steps keep that order (else: most reached first)."""
    order = journeys if isinstance(journeys, Mapping) else {}
    names = set(journeys) | {name.split(SEP)[1] for name in counts if name.startswith("j" + SEP)}
    report: dict[str, Any] = {"journeys": {jid: _journey(counts, jid, order.get(jid, ())) for jid in sorted(names)}}
    conversions = counts.get(key("conversions"), 0)
    cross = counts.get(key("conversions", "cross_channel"), 0)
    paths = sorted(_under(counts, "path").items(), key=lambda item: (-item[1], item[0]))[:TOP_PATHS]
    report["cross_channel"] = {
        "conversions": conversions, "cross_channel": cross, "rate": _rate(cross, conversions),
        "top_paths": [{"path": path.split(">"), "conversions": n} for path, n in paths],
    }  # fmt: skip
    report["clv"] = {"all": _clv(counts, ("single", "multi")), "single_channel": _clv(counts, ("single",)),
                     "multi_channel": _clv(counts, ("multi",))}  # fmt: skip
    customers = counts.get(key("customers"), 0)
    interactions = counts.get(key("interactions"), 0)
    report["engagement"] = {
        "customers": customers, "interactions": interactions,
        "interactions_per_customer": round(interactions / customers, 2) if customers else None,
        "interactions_histogram": _histogram(counts, key("interactions", "at")),
        "channels_histogram": _histogram(counts, key("channels", "at")),
    }  # fmt: skip
    issued, redeemed = counts.get(key("coupons", "issued"), 0), counts.get(key("coupons", "redeemed"), 0)
    report["coupons"] = {"issued": issued, "redeemed": redeemed, "redemption_rate": _rate(redeemed, issued),
                         "revenue": round(counts.get(key("coupons", "revenue_cents"), 0) / 100, 2)}  # fmt: skip
    report["channels"] = dict(sorted(_under(counts, "sent").items()))
    report["days"] = _days(counts)
    report["offers"] = _offers(counts)
    report["broadcasts"] = summarize_occurrences(counts, SEP)
    report["programme"] = programme({group: _under(counts, key(PROGRAMME, group)) for group in GROUPS})
    return report


def _sent_converted(sent: int, converted: int) -> dict[str, Any]:
    return {"sent": sent, "converted": converted, "conversion_rate": _rate(converted, sent)}


def _offers(counts: Mapping[str, int]) -> dict[str, dict[str, Any]]:
    """Per offer, by id: sends and conversions (a run's conversion counts for every offer sent in it), in total and
    split into chosen (the best eligible offer) and explore, and how its decisions went."""
    found: dict[str, Counter[str]] = {}
    prefix = OFFER + SEP
    for name, n in counts.items():
        if name.startswith(prefix):
            offer, what = name[len(prefix) :].split(SEP, 1)
            found.setdefault(offer, Counter())[what] += n
    offers = {}
    for offer, c in sorted(found.items()):
        arms = {how: _sent_converted(c[key("sent", how)], c[key("converted", how)]) for how in HOW}
        sent, converted = (sum(arm[what] for arm in arms.values()) for what in ("sent", "converted"))
        out = {what.split(SEP, 1)[1]: n for what, n in c.items() if what.startswith("out" + SEP) and n}
        offers[offer] = {**_sent_converted(sent, converted), **arms, "picked": c["picked"],
                         "candidate": c["candidate"], "out": dict(sorted(out.items()))}  # fmt: skip
    return offers


def _step(steps: dict[str, dict[str, Any]], step: str) -> dict[str, Any]:
    """A step's figures: `step` records (reached), sends and suppressions (by reason), a `wait_for`'s outcomes,
    and the exits that name the step (`no_date`)."""
    if step not in steps:
        steps[step] = {"reached": 0, "sent": 0, "suppressed": 0, "suppressed_by": {}, "matched": 0, "timed_out": 0,
                       "exited": {}}  # fmt: skip
    return steps[step]


def _journey(counts: Mapping[str, int], jid: str, order: Sequence[str]) -> dict[str, Any]:
    def get(*parts: object) -> int:
        return counts.get(key("j", jid, *parts), 0)

    exited = _under(counts, key("j", jid, "exited"))
    steps: dict[str, dict[str, Any]] = {}
    prefix, detail = key("j", jid, "step") + SEP, key("j", jid, AT) + SEP
    for name, n in counts.items():
        if name.startswith(prefix):
            step, what = name[len(prefix):].rsplit(SEP, 1)
            _step(steps, step)[what] = n
        elif name.startswith(detail):
            step, what, *reason = name[len(detail) :].split(SEP)
            if reason:  # suppressed or exited, by reason
                _step(steps, step)["suppressed_by" if what == "suppressed" else what][reason[0]] = n
            else:
                _step(steps, step)[what] = n
    for figures in steps.values():
        for by in ("suppressed_by", "exited"):
            figures[by] = dict(sorted(figures[by].items()))
    rank = {step: i for i, step in enumerate(order)}
    steps = dict(sorted(steps.items(), key=lambda item: (rank.get(item[0], len(rank)), -item[1]["reached"], item[0])))
    converted_t, converted_h = get("converted", "treatment"), get("converted", "holdout")
    return {
        "entered": get("entered"), "active": get("entered") - sum(exited.values()),
        "exited": dict(sorted(exited.items())), "sends": dict(sorted(_under(counts, key("j", jid, "sent")).items())),
        "suppressed": dict(sorted(_under(counts, key("j", jid, "suppressed")).items())),
        "conversions": converted_t + converted_h, "coupons_redeemed": get("coupons", "redeemed"),
        "not_entered": dict(sorted(_under(counts, key("j", jid, "not_entered")).items())), "steps": steps,
        "lift": lift(get("entered", "treatment"), converted_t, get("entered", "holdout"), converted_h),
    }  # fmt: skip


def _days(counts: Mapping[str, int]) -> dict[str, dict[str, int]]:
    """Per UTC day: entries, sends, conversions and redemptions over every journey."""
    days: dict[str, dict[str, int]] = {}
    prefix = DAY + SEP
    for name, n in counts.items():
        if not name.startswith(prefix):
            continue
        day, *rest = name[len(prefix):].split(SEP)
        row = days.setdefault(day, {"entered": 0, "sent": 0, "conversions": 0, "coupons_redeemed": 0})
        if rest[0] == "j" and rest[2] in ("entered", "sent") and len(rest) == 3 + (rest[2] == "sent"):
            row[rest[2]] += n
        elif rest == ["conversions"]:
            row["conversions"] += n
        elif rest == ["coupons", "redeemed"]:
            row["coupons_redeemed"] += n
    return dict(sorted(days.items()))
