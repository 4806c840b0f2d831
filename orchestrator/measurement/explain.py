"""Human-readable timelines of audit records, and the action diff behind `simulate --compare`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from orchestrator.engine.outcome import Record
from orchestrator.measurement.maps import condition_text
from orchestrator.simulate import by_customer


def describe(record: Record) -> str:
    """One audit record as a line an ops person reads: what happened, in which journey, and why."""
    kind = record["kind"]
    where = f"{record.get('journey')} v{record.get('version')}"
    step = f"{where} > {record['step']}" if "step" in record else where
    if kind == "event":
        return f"{record['type']} via {record['channel']} ({record['event_id']})"
    if kind == "duplicate":
        return f"{record['type']} ({record['event_id']}) ignored: event_id seen before"
    if kind == "entered":
        holdout = ", holdout: nothing will be sent" if record.get("holdout") else ""
        return f"{where} run {record['run']}{holdout}"
    if kind == "step":
        until = f" until {record['until']}" if "until" in record else ""
        return f"{step} ({record['type']}){until}"
    if kind == "sent":
        return f"{step}: {record['channel']} {record['template']}{_offer(record)} ({record['action_id']})"
    if kind == "suppressed":
        return (f"{step}: {record['channel']} {record['template']}{_offer(record)} not sent: "
                f"{_why(record['reason'], SUPPRESSED)}")  # fmt: skip
    if kind == "deferred":
        return (f"{step}: {record['channel']} {record['template']}{_offer(record)} held until {record['until']} "
                f"({_why(record['reason'], DEFERRED, ': ')})")  # fmt: skip
    if kind == "not_entered":
        return f"{where} not entered: {_refusal(record)}"
    if kind == "bad_timezone":
        return f"time zone {record.get('timezone')!r} is not an IANA zone name: {record.get('used')} used instead"
    if kind == "decided":
        return f"{step}: {_decision(record)}"
    if kind == "matched":
        return f"{step}: awaited event {record['event_id']} arrived"
    if kind == "timed_out":
        return f"{step}: awaited event did not come"
    if kind == "exited":
        at = f" at {record['step']}" if record.get("step") else ""
        meaning = f": {EXITED[record['reason']]}" if record["reason"] in EXITED else ""
        return f"{where} run {record['run']} ({record['reason']}{at}{meaning})"
    if kind == "merged":
        what = f"{where} run {record['run']}" if "journey" in record else "anonymous visitor"
        return f"{what} {record['from']} merged into {record['into']}"
    if kind == "converted":
        group = "holdout" if record.get("holdout") else "treatment"
        path = " > ".join(record.get("path", []))
        return f"{where} run {record['run']} reached its goal ({group}; path {path or 'unknown'})"
    return " ".join(f"{k}={v}" for k, v in record.items() if k not in ("at", "customer", "kind"))


SUPPRESSED = {
    "holdout": "the journey's holdout, its control group",
    "global_holdout": "the programme's global control group",
    "no_consent": "no consent on the channel or its fallbacks",
    "frequency_cap": "the channel's daily cap is reached",
    "journey_cap": "the journey's max_sends is reached",
    "spacing": "too soon after the last marketing send",
    "no_template": "the template name came out empty",
}
DEFERRED = {"quiet_hours": "the customer's quiet hours", "send_window": "outside the journey's send window"}
EXITED = {"no_date": "no date to wait for at the wait_until's path"}


def _why(reason: str, words: dict[str, str], joint: str = "") -> str:
    """`reason (what it means)`, or with a `joint` `reason: what it means`: the code stays first, to grep for; a
    reason with no words reads as itself."""
    meaning = words.get(reason)
    if not meaning:
        return reason
    return f"{reason}{joint}{meaning}" if joint else f"{reason} ({meaning})"


def _refusal(record: Record) -> str:
    """Why a trigger started no run, from a `not_entered` record."""
    reason = record.get("reason")
    if reason == "where":
        condition = record.get("condition")
        return "the trigger's where does not hold" + (f": {condition_text(condition)}" if condition else "")
    if reason == "reentry":
        until = record.get("until")
        return f"reentry: not before {until}, the cool-down since the last run" if until else (
            "reentry: the journey allows this customer no new run")  # fmt: skip
    if reason == "running":
        return f"already in the journey (run {record.get('run')})"
    if reason == "max_active_journeys":
        active = record.get("active") or []
        shown = f" ({', '.join(map(str, active))})" if active else ""
        return f"already in {len(active) or 'the most'} marketing journeys{shown}: the policy's max_active_journeys"
    if reason == "disabled":
        return "the journey is disabled"
    return str(reason)


def _offer(record: Record) -> str:
    """` for offer X` (and ` (explored)`) on the send of a picked offer; nothing on a plain send."""
    if not record.get("offer"):
        return ""
    return f" for offer {record['offer']}" + (" (explored)" if record.get("explore") else "")


def _score(candidate: Record) -> str:
    score = candidate.get("score")
    return f"{candidate['offer']}" if score is None else f"{candidate['offer']} (score {score:g})"


def _decision(record: Record) -> str:
    """`picked A (score 2); also eligible: B (score 1); C out (capped)`: the picks, the eligible offers that
    ranked lower, then those out with their reason, in the order the record lists them."""
    candidates = record.get("candidates") or []
    picked = list(record.get("picked") or [])
    by_offer = {c["offer"]: c for c in candidates}
    eligible = [c for c in candidates if not c.get("out") and c["offer"] not in picked]
    out = [c for c in candidates if c.get("out")]
    if picked:
        parts = ["picked " + ", ".join(_score(by_offer.get(offer, {"offer": offer})) for offer in picked)
                 + (" (explored)" if record.get("explore") else "")]  # fmt: skip
    else:
        parts = ["no offer picked" if eligible else "no offer eligible"]
    if eligible:
        parts.append("also eligible: " + ", ".join(map(_score, eligible)))
    if out:
        parts.append(", ".join(f"{c['offer']} out ({str(c['out']).replace('_', ' ')})" for c in out))
    return "; ".join(parts)


def timelines(records: Iterable[Record]) -> Iterable[str]:
    for customer, group in by_customer(records):
        yield f"customer {customer}" if customer != "None" else "broadcasts (scheduled journeys' occurrences)"
        for record in group:
            yield f"  {record['at']}  {record['kind']:<10}  {describe(record)}"


# ------------------------------------------------------------------------------------- compare

_Key = tuple[str, str, str, str, str]  # customer, journey, step, channel, template


@dataclass(slots=True)
class Change:
    change: str  # added, removed, moved
    customer: str
    journey: str
    step: str
    channel: str
    template: str
    at: str  # in B for added and moved, in A for removed
    was: str | None = None  # moved: the time in A


@dataclass(slots=True)
class Diff:
    changes: list[Change] = field(default_factory=list)
    unchanged: int = 0

    def totals(self) -> Counter[tuple[str, str, str]]:
        return Counter((c.journey, c.channel, c.change) for c in self.changes)


def _key(action: Record) -> _Key:
    return (action["customer_id"], action["journey"], action["step"], action["channel"], action["template"])


def diff_actions(before: Sequence[Record], after: Sequence[Record]) -> Diff:
    """Match actions by (customer, journey, step, channel, template), in order; versions may differ."""
    pending: dict[_Key, list[Record]] = {}
    for action in before:
        pending.setdefault(_key(action), []).append(action)
    diff = Diff()
    for action in after:
        key = _key(action)
        olds = pending.get(key)
        if olds:
            old = olds.pop(0)
            if old["at"] == action["at"]:
                diff.unchanged += 1
            else:
                diff.changes.append(Change("moved", *key, at=action["at"], was=old["at"]))
        else:
            diff.changes.append(Change("added", *key, at=action["at"]))
    for key, olds in pending.items():
        diff.changes.extend(Change("removed", *key, at=old["at"]) for old in olds)
    diff.changes.sort(key=lambda c: (c.customer, c.at, c.journey, c.step))
    return diff


def render_diff(diff: Diff) -> Iterable[str]:
    marks = {"added": "+", "removed": "-", "moved": "~"}
    customer = None
    for change in diff.changes:
        if change.customer != customer:
            customer = change.customer
            yield f"customer {customer}"
        what = f"{change.channel} {change.template}  {change.journey} > {change.step}"
        when = f"{change.was} -> {change.at}" if change.change == "moved" else change.at
        yield f"  {marks[change.change]} {change.change:<7}  {when}  {what}"
    totals = diff.totals()
    if not totals:
        yield f"no change: the same {diff.unchanged} actions at the same times"
        return
    yield ""
    yield f"{'journey':<24} {'channel':<12} {'added':>6} {'removed':>8} {'moved':>6}"
    for journey, channel in sorted({(j, c) for j, c, _ in totals}):
        counts = [totals[(journey, channel, kind)] for kind in ("added", "removed", "moved")]
        yield f"{journey:<24} {channel:<12} {counts[0]:>6} {counts[1]:>8} {counts[2]:>6}"
    added, removed, moved = (sum(v for (_, _, k), v in totals.items() if k == kind)
                             for kind in ("added", "removed", "moved"))  # fmt: skip
    yield f"total: {added} added, {removed} removed, {moved} moved, {diff.unchanged} unchanged"
