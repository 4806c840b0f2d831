"""Property tests of the marketing-pressure limits over generated journeys, policies and dense event logs.

Each example draws a small programme: 2-4 journeys (marketing or transactional; `event`, `inactive_for` and
`becomes` triggers; sends on email/sms/push with fallbacks, short waits, `max_sends`, `send_window`, holdout,
reentry, `exit_on`) and a policy (consent, daily caps, quiet hours, `spacing`, `max_active_journeys`,
`global_holdout`), then a log of a few customers with events seconds to an hour apart over a few hours, so that the
limits bind. The properties read only what `simulate` gives a user (actions and audit records, in order), plus the
customer's consent and time zone as of each decision:

(a) spacing: no two marketing sends to a customer on the spacing channels closer than `min`;
(b) max_sends: no window of length `within` holds more than `max` of one journey's sends to one customer;
(c) max_active_journeys: no customer ever runs more than N marketing journeys at once, and a refusal happens only
    when N are running (and names them);
(d) global holdout: the control group (a stable hash of the customer key) gets nothing from marketing journeys, and
    its marketing sends are suppressed `global_holdout` (or `holdout`) only; nobody else is suppressed so;
(e) transactional journeys: never suppressed for frequency_cap/spacing/global_holdout nor deferred for quiet hours
    nor refused for max_active_journeys, and they send exactly what they would with no marketing journeys and no
    marketing limits; no journey sends on a consent-required channel without consent.

Non-vacuity: each property runs its examples inside the test and then asserts that the limit under test actually
bound (a suppression, a refusal, ...) in a good share of them; `target()` steers the search towards busy examples.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import orjson
import pytest
import yaml
from hypothesis import given, settings, target
from hypothesis import strategies as st

from orchestrator.contract.journeys import DAYS, Journey, Policy
from orchestrator.engine import Engine, Outcome
from orchestrator.engine.ids import unit_interval
from orchestrator.engine.localtime import customer_zone, in_window, quiet_until
from orchestrator.engine.outcome import Record
from orchestrator.simulate import Result, Simulator
from orchestrator.timefmt import parse_clock, parse_rfc3339, to_ms
from tests.strategies import to_events

pytestmark = pytest.mark.filterwarnings("ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning")
PROPERTY = settings(max_examples=200, deadline=None, derandomize=True)

BASE = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)  # a Monday, 08:00 in Rome
CHANNELS = ("email", "sms", "push")
TRIGGER_EVENTS = ("cart_add", "page_view", "store_visit")
MARKETING_REASONS = ("frequency_cap", "spacing", "global_holdout")


def ms(text: str) -> int:
    return to_ms(parse_rfc3339(text))


# ------------------------------------------------------------------------------------ programmes


def _send(draw: st.DrawFn, n: int) -> dict[str, Any]:
    channel = draw(st.sampled_from(CHANNELS))
    others = [c for c in CHANNELS if c != channel]
    fallback = draw(st.sampled_from(([], [], others[:1], others[1:], others, others[::-1])))
    send: dict[str, Any] = {"channel": channel, "template": f"t{n}", "data": {"cart": "{{ profile.cart_value }}"}}
    if fallback:
        send["fallback"] = fallback
    return {"id": f"send-{n}", "send": send}


@st.composite
def journey_docs(draw: st.DrawFn, jid: str, category: str) -> dict[str, Any]:
    kind = draw(st.sampled_from(("event", "event", "event", "inactive_for", "becomes")))
    if kind == "event":
        trigger: dict[str, Any] = {"event": draw(st.sampled_from(TRIGGER_EVENTS))}
        if draw(st.integers(0, 4)) == 0:
            trigger["where"] = {"profile.cart_value": {"gte": 20}}
    elif kind == "inactive_for":
        trigger = {"inactive_for": draw(st.sampled_from(("5m", "20m", "45m")))}
    else:
        trigger = {"becomes": draw(st.sampled_from((
            {"profile.recent.page_view.30m": {"gte": 2}},
            {"profile.cart_value": {"gte": 60}},
            {"profile.recent.cart_add.1h": {"gte": 2}},
        )))}  # fmt: skip
    steps: list[dict[str, Any]] = []
    if draw(st.booleans()):
        steps.append({"wait": draw(st.sampled_from(("1m", "10m", "30m")))})
    for n in range(draw(st.integers(1, 3))):
        if n and draw(st.booleans()):
            steps.append({"wait": draw(st.sampled_from(("30s", "5m", "20m")))})
        steps.append(_send(draw, n))
    doc: dict[str, Any] = {
        "id": jid,
        "category": category,
        "priority": draw(st.integers(10, 90)),
        "trigger": trigger,
        "reentry": draw(st.sampled_from(("always", "always", "always", "10m", "1h", "never"))),
        "steps": steps,
    }
    if draw(st.integers(0, 3)) == 0:
        doc["exit_on"] = ["purchase"]
    if draw(st.integers(0, 5)) == 0:
        doc["holdout"] = "30%"
    if draw(st.booleans()):
        doc["max_sends"] = {"max": draw(st.integers(1, 3)), "within": draw(st.sampled_from(("15m", "1h", "3h")))}
    if draw(st.integers(0, 4)) == 0:
        doc["send_window"] = draw(st.sampled_from((
            {"start": "09:00", "end": "11:00"},
            {"start": "10:30", "end": "08:00"},
            {"start": "08:00", "end": "20:00", "days": ["tue", "wed"]},
        )))  # fmt: skip
    return doc


CONSENTS = ([], ["email"], ["email", "sms", "push"], ["sms", "push"])


@st.composite
def policy_docs(draw: st.DrawFn, need: str) -> dict[str, Any]:
    """A policy; `need` (spacing, max_active, holdout, transactional) is always present."""
    doc: dict[str, Any] = {
        "default_timezone": draw(st.sampled_from(("UTC", "Europe/Rome", "America/New_York"))),
        "consent_required": draw(st.sampled_from(CONSENTS[need == "consent" :])),
    }
    if need == "transactional" or draw(st.integers(0, 2)) == 0:
        doc["max_per_day"] = draw(st.sampled_from(({"email": 1}, {"email": 2, "sms": 1, "push": 2}, {"push": 0})))
    if need == "transactional" or draw(st.integers(0, 2)) == 0:
        doc["quiet_hours"] = draw(st.sampled_from((
            {"start": "09:00", "end": "10:00", "channels": ["email", "sms", "push"]},
            {"start": "21:00", "end": "08:30"},
            {"start": "08:00", "end": "09:30", "channels": ["email"]},
        )))  # fmt: skip
    if need == "transactional":  # wide, so that transactional sends come inside it
        doc["spacing"] = {"min": draw(st.sampled_from(("1h", "4h"))), "channels": list(CHANNELS)}
    elif need == "spacing" or draw(st.booleans()):
        doc["spacing"] = {"min": draw(st.sampled_from(("2m", "10m", "30m", "1h", "4h"))),
                          "channels": draw(st.sampled_from((["email", "sms", "push"], ["email"], ["sms", "push"])))}
    if need in ("max_active", "transactional") or draw(st.booleans()):
        doc["max_active_journeys"] = 1 if need == "transactional" else draw(st.integers(1, 2))
    if need in ("holdout", "transactional") or draw(st.integers(0, 2)) == 0:
        doc["global_holdout"] = draw(st.sampled_from(("10%", "30%", "50%")))
    return doc


# ------------------------------------------------------------------------------------ event logs

CUSTOMERS = tuple(f"c-{i}" for i in range(1, 9))
_S = 1000
# Gaps between one customer's events: none, seconds, minutes, up to an hour (a few draws per event keep it fast).
GAPS_MS = st.sampled_from([0, 1, _S, 30 * _S, 60 * _S, 119 * _S, 120 * _S, 299 * _S, 300 * _S, 437 * _S, 600 * _S,
                           601 * _S, 900 * _S, 1200 * _S, 1799 * _S, 1800 * _S, 2345 * _S, 3600 * _S])  # fmt: skip
EVENTS: tuple[tuple[str, dict[str, Any]], ...] = (
    *(("cart_add", {"sku": sku, "price": price}) for sku in ("S1", "S2") for price in (5, 15, 35, 70)),
    *(("page_view", {"url": "/sale"}),) * 5,
    *(("store_visit", {"store_id": "milano-1"}),) * 4,
    ("purchase", {"value": 10}), ("purchase", {"value": 60}),
    *(("consent_update", {"channel": c, "granted": g}) for c in CHANNELS for g in (True, False)),
    *(("identify", {"timezone": zone}) for zone in ("Europe/Rome", "Asia/Tokyo", "UTC")),
)  # fmt: skip


def _at(offset_ms: int) -> str:
    return (BASE + timedelta(milliseconds=offset_ms)).isoformat().replace("+00:00", "Z")


@st.composite
def dense_logs(draw: st.DrawFn) -> list[dict[str, Any]]:
    """2-6 customers, each consenting to some channels first and then 3-14 events over a few hours."""
    people = draw(st.lists(st.sampled_from(CUSTOMERS), min_size=2, max_size=6, unique=True))
    docs: list[dict[str, Any]] = []
    for who in people:
        t = draw(st.integers(0, 3 * 3600)) * _S
        granted = draw(st.sampled_from(((), ("email",), ("email", "sms", "push"), ("sms", "push"), CHANNELS)))
        kinds = [("consent_update", {"channel": c, "granted": True}) for c in granted]
        kinds += draw(st.lists(st.sampled_from(EVENTS), min_size=3, max_size=14))
        channel = draw(st.sampled_from(("web", "app", "store")))
        for kind, props in kinds:
            t += draw(GAPS_MS)
            n = len(docs)
            properties = {**props, "order_id": f"o-{n}"} if kind == "purchase" else props
            docs.append({"event_id": f"e-{n:03d}", "type": kind, "occurred_at": _at(t), "channel": channel,
                         "customer_id": who, "properties": properties})  # fmt: skip
    return docs


@dataclass
class Programme:
    journeys: tuple[Journey, ...]
    policy: Policy
    docs: list[dict[str, Any]]

    @property
    def marketing(self) -> set[str]:
        return {j.id for j in self.journeys if j.category == "marketing"}

    @property
    def transactional(self) -> set[str]:
        return {j.id for j in self.journeys if j.category == "transactional"}


@st.composite
def programmes(draw: st.DrawFn, need: str) -> Programme:
    count = draw(st.integers(2, 4))
    categories = [draw(st.sampled_from(("marketing", "marketing", "transactional"))) for _ in range(count)]
    if need == "transactional":
        categories[0] = "transactional"  # and at least one marketing journey to compete with it
        categories[1] = "marketing"
    elif need in ("spacing", "max_active", "holdout"):
        categories[0] = "marketing"
    docs = [draw(journey_docs(f"j{i}", c)) for i, c in enumerate(categories)]
    if need == "max_sends" and "max_sends" not in docs[0]:
        docs[0]["max_sends"] = {"max": draw(st.integers(1, 2)), "within": draw(st.sampled_from(("15m", "1h")))}
    journeys = tuple(Journey.model_validate(doc) for doc in docs)
    policy = Policy.model_validate(draw(policy_docs(need)))
    return Programme(journeys, policy, draw(dense_logs()))


# ------------------------------------------------------------------------------------ replay


@dataclass
class Seen:
    """An action with what the engine knew of the customer when it was decided."""

    action: Record
    consent: dict[str, Any]
    zone: Any
    now: int


@dataclass
class Replay:
    result: Result
    seen: list[Seen] = field(default_factory=list)


def replay(journeys: tuple[Journey, ...], policy: Policy, docs: list[dict[str, Any]], until: int | None = None
           ) -> Replay:  # fmt: skip
    seen: list[Seen] = []

    def on_outcome(outcome: Outcome) -> None:
        zone, _ = customer_zone(outcome.state.profile, policy.default_timezone)
        consent = dict(outcome.state.profile["consent"])  # consent changes only with an event, before decisions
        seen.extend(Seen(action, consent, zone, outcome.now) for action in outcome.actions)

    result = Simulator(Engine(journeys, policy), on_outcome).run(to_events(docs), until)
    assert len(seen) == len(result.actions)
    return Replay(result, seen)


def of_kind(result: Result, kind: str) -> list[Record]:
    return [r for r in result.audit if r["kind"] == kind]


def suppressed(result: Result, reason: str) -> int:
    return sum(1 for r in result.audit if r["kind"] == "suppressed" and r["reason"] == reason)


def checked(property_: Callable[..., None], bound: Callable[[], float], share: float) -> None:
    """Run the hypothesis property, then check the limit bound in at least `share` of its examples."""
    property_()
    assert bound() >= share, f"the limit bound in only {bound():.0%} of the examples: the property is near vacuous"


# ------------------------------------------------------------------------------------ checkers


def check_spacing(programme: Programme, result: Result) -> None:
    spacing = programme.policy.spacing
    assert spacing is not None
    times: dict[str, list[int]] = defaultdict(list)
    for action in result.actions:
        if action["journey"] in programme.marketing and action["channel"] in spacing.channels:
            times[action["customer_id"]].append(ms(action["at"]))
    for customer, at in times.items():
        at.sort()
        for earlier, later in pairwise(at):
            assert later - earlier >= spacing.min, f"{customer}: marketing sends {later - earlier} ms apart"


def check_max_sends(programme: Programme, result: Result) -> None:
    limits = {j.id: j.max_sends for j in programme.journeys if j.max_sends is not None}
    times: dict[tuple[str, str], list[int]] = defaultdict(list)
    for action in result.actions:
        if action["journey"] in limits:
            times[(action["customer_id"], action["journey"])].append(ms(action["at"]))
    for (customer, jid), at in times.items():
        cap = limits[jid]
        assert cap is not None
        at.sort()
        for i, start in enumerate(at):  # the window [start, start + within) holds every send from i on in it
            inside = sum(1 for t in at[i:] if t - start < cap.within)
            assert inside <= cap.max, f"{customer} got {inside} sends of {jid} within {cap.within} ms (max {cap.max})"


def check_max_active(programme: Programme, result: Result) -> None:
    most = programme.policy.max_active_journeys
    assert most is not None
    active: dict[str, set[tuple[str, int]]] = defaultdict(set)
    for record in result.audit:
        customer, kind = record["customer"], record["kind"]
        jid = record.get("journey")
        if jid not in programme.marketing:
            if kind == "not_entered":
                assert record["reason"] != "max_active_journeys", f"transactional {jid} refused: {record}"
            continue
        runs = active[customer]
        if kind == "entered":
            runs.add((jid, record["run"]))
            assert len(runs) <= most, f"{customer} runs {sorted(runs)} at {record['at']} (max {most})"
        elif kind == "exited":
            runs.discard((jid, record["run"]))
        elif kind == "not_entered" and record["reason"] == "max_active_journeys":
            assert len(runs) == most, f"{customer} refused {jid} with only {sorted(runs)} running"
            assert record["active"] == sorted(j for j, _ in runs)


def control(key: str, share: float) -> bool:
    return unit_interval("global_holdout", key) * 100 < share


def check_global_holdout(programme: Programme, result: Result) -> None:
    share = programme.policy.global_holdout
    for action in result.actions:
        if action["journey"] in programme.marketing:
            assert not control(action["customer_id"], share), f"control customer got a marketing send: {action}"
    for record in result.audit:
        jid = record.get("journey")
        if record["kind"] == "broadcast":
            continue  # an occurrence's counts: no customer
        if jid not in programme.marketing:
            assert record.get("reason") != "global_holdout", record
            assert "global_holdout" not in record, record
            continue
        held = control(record["customer"], share)
        if record["kind"] == "entered":
            assert record.get("global_holdout", False) is held, record
        elif record["kind"] == "suppressed":
            if held:
                assert record["reason"] in ("holdout", "global_holdout"), record  # the journey's holdout goes first
            else:
                assert record["reason"] != "global_holdout", record
        elif record["kind"] == "deferred":
            assert not held, f"a control customer's marketing send was deferred, not suppressed: {record}"


def check_transactional(programme: Programme, replayed: Replay) -> None:
    result, policy = replayed.result, programme.policy
    for record in result.audit:
        if record.get("journey") not in programme.transactional:
            continue
        if record["kind"] == "suppressed":
            assert record["reason"] not in MARKETING_REASONS, record
        elif record["kind"] == "deferred":
            assert record["reason"] != "quiet_hours", record
        elif record["kind"] == "not_entered":
            assert record["reason"] != "max_active_journeys", record
        elif record["kind"] == "entered":
            assert "global_holdout" not in record, record
    for refused in of_kind(result, "not_entered"):
        assert set(refused.get("active", ())) <= programme.marketing, refused  # transactional runs are not counted
    check_consent(policy, replayed)
    # What a transactional journey sends depends on neither the marketing journeys nor the marketing limits.
    alone = Policy(default_timezone=policy.default_timezone, consent_required=policy.consent_required)
    mine = [j for j in programme.journeys if j.id in programme.transactional]
    expected = replay(tuple(mine), alone, programme.docs).result.actions
    got = [a for a in result.actions if a["journey"] in programme.transactional]
    assert orjson.dumps(got) == orjson.dumps(expected)


def check_consent(policy: Policy, replayed: Replay) -> None:
    for seen in replayed.seen:
        channel = seen.action["channel"]
        if channel in policy.consent_required:
            assert seen.consent.get(channel) is True, f"sent on {channel} without consent: {seen.action}"


def check_send_windows(programme: Programme, replayed: Replay) -> int:
    """No journey sends outside its `send_window` (local time, as of the decision); returns the sends checked."""
    windows = {j.id: j.send_window for j in programme.journeys if j.send_window is not None}
    count = 0
    for seen in replayed.seen:
        window = windows.get(seen.action["journey"])
        if window is not None:
            days = frozenset(DAYS.index(d) for d in window.days)
            start, end = parse_clock(window.start), parse_clock(window.end)
            assert in_window(seen.now, start, end, days, seen.zone), (str(seen.zone), seen.action)
            count += 1
    return count


def marketing_would_bind(programme: Programme, replayed: Replay) -> Counter[str]:
    """The transactional sends that a marketing send in their place would have been held back for, by reason (the
    marketing sends before them counted, as the policy counts them)."""
    policy = programme.policy
    would: Counter[str] = Counter()
    earlier: dict[str, list[tuple[int, str]]] = defaultdict(list)
    quiet = policy.quiet_hours
    for seen in replayed.seen:
        action, now = seen.action, seen.now
        customer, channel = action["customer_id"], action["channel"]
        if action["journey"] in programme.transactional:
            if control(customer, policy.global_holdout):
                would["global_holdout"] += 1
            spacing = policy.spacing
            if spacing and channel in spacing.channels and any(
                c in spacing.channels and now - at < spacing.min for at, c in earlier[customer]
            ):
                would["spacing"] += 1
            if quiet and channel in quiet.channels:
                window = (parse_clock(quiet.start), parse_clock(quiet.end))
                if quiet_until(now, *window, seen.zone) is not None:
                    would["quiet_hours"] += 1
            cap = policy.max_per_day.get(channel)
            if cap is not None and sum(1 for at, c in earlier[customer] if c == channel) >= cap:
                would["frequency_cap"] += 1
        elif action["journey"] in programme.marketing:
            earlier[customer].append((now, channel))
    if entered_at_capacity(programme, replayed.result):
        would["max_active_journeys"] += 1
    return would


def entered_at_capacity(programme: Programme, result: Result) -> int:
    """Transactional entries while the customer already ran `max_active_journeys` marketing journeys."""
    most = programme.policy.max_active_journeys
    active: dict[str, set[tuple[str, int]]] = defaultdict(set)
    count = 0
    for record in result.audit:
        jid, runs = record.get("journey"), active[record["customer"]]
        if record["kind"] == "entered" and jid in programme.transactional:
            count += most is not None and len(runs) >= most
        elif record["kind"] == "entered" and jid in programme.marketing:
            runs.add((jid, record["run"]))
        elif record["kind"] == "exited":
            runs.discard((jid, record["run"]))
    return count


# ------------------------------------------------------------------------------------ (a) spacing


def test_spacing_is_never_violated() -> None:
    examples, bound = [0], [0]

    @PROPERTY
    @given(programme=programmes("spacing"))
    def spacing(programme: Programme) -> None:
        result = replay(programme.journeys, programme.policy, programme.docs).result
        check_spacing(programme, result)
        hits = suppressed(result, "spacing")
        examples[0] += 1
        bound[0] += hits > 0
        target(float(hits), label="spacing suppressions")

    checked(spacing, lambda: bound[0] / examples[0], 0.5)


# ------------------------------------------------------------------------------------ (b) max_sends


def test_max_sends_is_never_exceeded() -> None:
    examples, bound = [0], [0]

    @PROPERTY
    @given(programme=programmes("max_sends"))
    def max_sends(programme: Programme) -> None:
        result = replay(programme.journeys, programme.policy, programme.docs).result
        check_max_sends(programme, result)
        hits = suppressed(result, "journey_cap")
        examples[0] += 1
        bound[0] += hits > 0
        target(float(hits), label="journey_cap suppressions")

    checked(max_sends, lambda: bound[0] / examples[0], 0.5)


# ------------------------------------------------------------------------------ (c) max_active_journeys


def test_max_active_journeys_is_never_exceeded() -> None:
    examples, bound = [0], [0]

    @PROPERTY
    @given(programme=programmes("max_active"))
    def max_active(programme: Programme) -> None:
        result = replay(programme.journeys, programme.policy, programme.docs).result
        check_max_active(programme, result)
        hits = sum(1 for r in of_kind(result, "not_entered") if r["reason"] == "max_active_journeys")
        examples[0] += 1
        bound[0] += hits > 0
        target(float(hits), label="max_active_journeys refusals")

    checked(max_active, lambda: bound[0] / examples[0], 0.4)


# ---------------------------------------------------------------------------------- (d) global holdout


def test_the_global_holdout_gets_nothing_from_marketing() -> None:
    examples, bound = [0], [0]

    @PROPERTY
    @given(programme=programmes("holdout"))
    def holdout(programme: Programme) -> None:
        result = replay(programme.journeys, programme.policy, programme.docs).result
        check_global_holdout(programme, result)
        hits = suppressed(result, "global_holdout")
        examples[0] += 1
        bound[0] += hits > 0
        target(float(hits), label="global_holdout suppressions")

    checked(holdout, lambda: bound[0] / examples[0], 0.5)


# ------------------------------------------------------------------------------- (e) transactional


def test_transactional_journeys_ignore_the_marketing_limits_but_not_consent() -> None:
    examples = [0]
    would: Counter[str] = Counter()

    @PROPERTY
    @given(programme=programmes("transactional"))
    def transactional(programme: Programme) -> None:
        replayed = replay(programme.journeys, programme.policy, programme.docs)
        check_transactional(programme, replayed)
        examples[0] += 1
        reasons = marketing_would_bind(programme, replayed)
        would.update(dict.fromkeys(reasons, 1))
        target(float(sum(reasons.values())), label="transactional sends a marketing rule would have held back")

    transactional()
    for reason in (*MARKETING_REASONS, "quiet_hours", "max_active_journeys"):  # examples where it would have bound
        assert would[reason] / examples[0] >= 0.1, (reason, would, examples[0])


def test_no_journey_sends_without_consent_nor_outside_its_send_window() -> None:
    examples, bound, windowed = [0], [0], [0]

    @PROPERTY
    @given(programme=programmes("consent"))
    def consent(programme: Programme) -> None:
        replayed = replay(programme.journeys, programme.policy, programme.docs)
        check_consent(programme.policy, replayed)
        windowed[0] += check_send_windows(programme, replayed) > 0
        hits = suppressed(replayed.result, "no_consent")
        examples[0] += 1
        bound[0] += hits > 0
        target(float(hits), label="no_consent suppressions")

    checked(consent, lambda: bound[0] / examples[0], 0.5)
    assert windowed[0] / examples[0] >= 0.1


# ------------------------------------------------------------------------------- fixed, binding cases


def fixed(journeys: list[str], policy: str, events: list[tuple[str, str, str]], until: int | None = None
          ) -> tuple[Programme, Replay]:  # fmt: skip
    """A hand-made programme: journey and policy YAML, events as (customer, type, minutes after BASE)."""
    js = tuple(Journey.model_validate(yaml.safe_load(text)) for text in journeys)
    pol = Policy.model_validate(yaml.safe_load(policy))
    docs = []
    for n, (who, kind, minutes) in enumerate(events):
        props = {"sku": f"S{n}", "price": 10} if kind == "cart_add" else {}
        docs.append({"event_id": f"f-{n}", "type": kind, "occurred_at": _at(int(float(minutes) * 60_000)),
                     "channel": "web", "customer_id": who, "properties": props})  # fmt: skip
    programme = Programme(js, pol, docs)
    return programme, replay(js, pol, docs, until)


NUDGE = """
id: ID
category: CATEGORY
trigger: {event: cart_add}
reentry: always
EXTRA
steps:
  - wait: 1m
  - send: {channel: email, template: ID}
"""


def nudge(jid: str, category: str = "marketing", extra: str = "") -> str:
    return NUDGE.replace("ID", jid).replace("CATEGORY", category).replace("EXTRA", extra)


def test_the_fixed_case_binds_each_limit_and_the_checkers_pass() -> None:
    """The checkers on a fixed dense case where every limit binds at least once: they are not vacuous."""
    journeys = [nudge("a"), nudge("b", extra="max_sends: {max: 2, within: 1h}"), nudge("r", "transactional")]
    policy = """
consent_required: []
spacing: {min: 10m, channels: [email]}
max_active_journeys: 1
global_holdout: 50%
"""
    minutes = ("0", "2", "4", "15", "30", "45", "70")
    events = [(who, "cart_add", m) for who in ("c-1", "c-2", "c-3", "c-5") for m in minutes]
    programme, replayed = fixed(journeys, policy, events)
    result = replayed.result
    check_spacing(programme, result)
    check_max_sends(programme, result)
    check_max_active(programme, result)
    check_global_holdout(programme, result)
    check_transactional(programme, replayed)
    reasons = Counter(r["reason"] for r in of_kind(result, "suppressed"))
    assert reasons["spacing"] > 0 and reasons["global_holdout"] > 0
    assert any(r["reason"] == "max_active_journeys" for r in of_kind(result, "not_entered"))
    assert {a["customer_id"] for a in result.actions if a["journey"] == "r"} == {"c-1", "c-2", "c-3", "c-5"}
    assert {c for c in ("c-1", "c-2", "c-3", "c-5") if control(c, 50)} == {"c-2", "c-3", "c-5"}  # the hash, pinned


def test_the_fixed_case_binds_max_sends() -> None:
    programme, replayed = fixed([nudge("b", extra="max_sends: {max: 2, within: 1h}")], "consent_required: []",
                                [("c-1", "cart_add", m) for m in ("0", "5", "10", "59", "61", "62", "121")])
    check_max_sends(programme, replayed.result)
    # Sends due 1 minute after each cart: 07:01, 07:06 go; 07:11 and 08:00 have both within the hour; 08:02 has only
    # 07:06 (07:01 is exactly an hour back, out); 08:03 has 07:06 and 08:02; 09:02 is an hour after 08:02: goes.
    assert [a["at"][11:16] for a in replayed.result.actions] == ["07:01", "07:06", "08:02", "09:02"]
    assert suppressed(replayed.result, "journey_cap") == 3


def test_the_checkers_catch_a_violation() -> None:
    """A checker fed a log the engine never produced fails: the properties can fail."""
    programme, replayed = fixed([nudge("a")], "consent_required: []\nspacing: {min: 10m}", [("c-1", "cart_add", "0")])
    action = replayed.result.actions[0]
    replayed.result.actions.append({**action, "at": _at(5 * 60_000)})
    with pytest.raises(AssertionError, match="apart"):
        check_spacing(programme, replayed.result)
    del replayed.result.actions[-1]
    twice = [nudge("b", extra="max_sends: {max: 1, within: 1h}")]
    programme, replayed = fixed(twice, "consent_required: []", [("c-1", "cart_add", "0")])
    replayed.result.actions.append({**replayed.result.actions[0], "at": _at(59 * 60_000)})
    with pytest.raises(AssertionError, match="within"):
        check_max_sends(programme, replayed.result)


# ------------------------------------------------------------------------------- engine bugs found


def test_a_send_window_inside_quiet_hours_does_not_defer_for_ever() -> None:
    late = """
id: late
trigger: {event: cart_add}
send_window: {start: "22:00", end: "23:00"}
steps:
  - send: {channel: sms, template: late}
"""
    quiet = 'consent_required: []\nquiet_hours: {start: "21:00", end: "08:00"}'
    month = ms("2026-04-02T07:00:00Z")  # the replay must be cut: it would not end by itself
    _, replayed = fixed([late], quiet, [("c-1", "cart_add", "0")], until=month)
    result = replayed.result
    # The window never opens outside quiet hours: the send is suppressed at once and the run goes on (it ends).
    assert result.actions == [] and of_kind(result, "deferred") == []
    assert [r["reason"] for r in of_kind(result, "suppressed")] == ["send_window"]
    assert [r["reason"] for r in of_kind(result, "exited")] == ["completed"]


def test_a_merge_keeps_both_runs_above_max_active_journeys_and_refuses_the_next_trigger() -> None:
    """Documented: the limit is checked when a trigger fires. A merge brings runs entered under another key; both
    are kept (ending one would lose a journey the person is in), and further triggers are refused until below."""
    wait = """
id: ID
trigger: {event: TYPE}
steps:
  - wait: 1h
  - send: {channel: email, template: ID}
"""
    journeys = tuple(Journey.model_validate(yaml.safe_load(wait.replace("ID", jid).replace("TYPE", kind)))
                     for jid, kind in (("a", "cart_add"), ("b", "page_view")))  # fmt: skip
    policy = Policy(consent_required=(), max_active_journeys=1)
    docs = [
        {"event_id": "m-1", "type": "cart_add", "occurred_at": _at(0), "channel": "web", "anonymous_id": "ck-1",
         "properties": {"sku": "S", "price": 1}},
        {"event_id": "m-2", "type": "page_view", "occurred_at": _at(60_000), "channel": "web", "customer_id": "c-1"},
        {"event_id": "m-3", "type": "identify", "occurred_at": _at(120_000), "channel": "web", "customer_id": "c-1",
         "anonymous_id": "ck-1"},  # the cookie turns out to be c-1: anon:ck-1's run of `a` moves to c-1
    ]  # fmt: skip
    result = Simulator(Engine(journeys, policy)).run(to_events(docs), until=ms(_at(180_000)))
    assert [r["journey"] for r in of_kind(result, "merged") if "journey" in r] == ["a"]
    assert sorted(result.states["c-1"].runs) == ["a", "b"]
    third = Journey.model_validate(yaml.safe_load(wait.replace("ID", "c").replace("TYPE", "product_view")))
    docs.append({"event_id": "m-4", "type": "product_view", "occurred_at": _at(150_000), "channel": "web",
                 "customer_id": "c-1", "properties": {"sku": "S"}})  # fmt: skip
    result = Simulator(Engine((*journeys, third), policy)).run(to_events(docs), until=ms(_at(180_000)))
    refused = [(r["journey"], r["reason"]) for r in of_kind(result, "not_entered")]
    assert refused == [("c", "max_active_journeys")]
