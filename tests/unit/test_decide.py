"""Next best action through the pure engine: `decide` steps over the offer catalogue, and `recommend` on sends.

The properties recompute what the contract says from the generated catalogue and events alone (eligibility in its
order, the ranking, caps over any window, what a recommendation leaves out) and compare that with the `decided`
audit records and the actions; the other tests pin explore, on_none, holdout, quiet hours and the action ids.
"""

from __future__ import annotations

import operator
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml
from hypothesis import event as note_event
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.contract.events import Event, event_from_document
from orchestrator.contract.journeys import Journey, Policy
from orchestrator.contract.offers import Catalogue
from orchestrator.engine import CustomerState, Engine
from orchestrator.engine.outcome import Record
from orchestrator.engine.state import DEFER
from orchestrator.simulate import Result, Simulator
from orchestrator.timefmt import format_ms, parse_rfc3339, to_ms
from tests.helpers import ev, journey, kinds, policy

# libcst (which Hypothesis imports to print a failing example as a patch) warns on import: see test_properties.py.
pytestmark = pytest.mark.filterwarnings("ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning")
PROPERTY = settings(max_examples=150, deadline=None, derandomize=True)

BASE = to_ms(parse_rfc3339("2026-03-02T10:00:00Z"))  # a Monday, 10:00 UTC
HOUR = 3_600_000
DAY = 24 * HOUR
OPEN = Policy(consent_required=())
CONSENT = Policy(consent_required=("email", "sms", "push"))  # no daily cap, no quiet hours: every pick is sent


def at(hours: float) -> str:
    return format_ms(BASE + int(hours * HOUR))


def offers(text: str) -> Catalogue:
    return Catalogue.model_validate(yaml.safe_load(text))


def simulate(journeys: list[Journey] | Journey, catalogue: Catalogue, events: list[Event], pol: Policy = OPEN,
             until: str | None = None) -> Result:  # fmt: skip
    items = journeys if isinstance(journeys, list) else [journeys]
    engine = Engine(items, pol, catalogue=catalogue)
    return Simulator(engine).run(events, to_ms(parse_rfc3339(until)) if until else None)


def sent(result: Result) -> list[tuple[str, str, str]]:
    """(at, offer or -, template) of every action, in order."""
    return [(a["at"], a.get("offer", "-"), a["template"]) for a in result.actions]


# ================================================================ 1. the pick is a brute-force ranking

OFFER_IDS = ("a", "b", "cart-10", "free-gift", "pts", "z-9")
OFFER_CHANNELS = ("instore", "email", "push", "sms")
NEEDS_CONSENT = frozenset(CONSENT.consent_required)
WEIGHT_PATHS = (
    "profile.cart_value", "profile.lifetime_value", "profile.orders", "profile.events.store_visit",
    "profile.events.cart_add", "profile.traits.points",  # a number or the text "many"
    "profile.traits.vip",  # a boolean: not a number, counts 0
    "profile.traits.tier", "profile.nothing.here", "event.properties.n", "entry.properties.n",
)  # fmt: skip
CONDITIONS: tuple[tuple[str, str, Any], ...] = (
    ("profile.cart_value", "gte", 20), ("profile.cart_value", "lt", 50), ("profile.traits.tier", "eq", "gold"),
    ("profile.events.store_visit", "gte", 2), ("profile.events.store_visit", "eq", 1),
    ("event.properties.store_id", "ne", "roma-2"), ("profile.lifetime_value", "gt", 30),
    ("profile.traits.points", "gte", 10), ("profile.traits.vip", "eq", True),
)  # fmt: skip
WINDOWS = {"1h": HOUR, "1d": DAY, "3d": 3 * DAY}
VALID_HOURS = (0, 6, 24, 30, 48, 96)
ORDERED: dict[str, Callable[[Any, Any], bool]] = {"gt": operator.gt, "gte": operator.ge, "lt": operator.lt}


@dataclass(frozen=True)
class GenOffer:
    """An offer as generated: its YAML document is built from it, the brute force reads it directly."""

    id: str
    channel: str
    fallback: tuple[str, ...]
    where: tuple[tuple[str, str, Any], ...]
    base: float
    weights: tuple[tuple[str, float], ...] | None  # None: `score: <base>`
    priority: int | None  # None: left out (50)
    cap: tuple[int, str] | None
    valid: tuple[int | None, int | None] | None  # hours after BASE

    def doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"id": self.id, "channel": self.channel, "template": f"t-{self.id}"}
        if self.fallback:
            doc["fallback"] = list(self.fallback)
        if self.where:
            doc["where"] = {path: want if op == "eq" else {op: want} for path, op, want in self.where}
        doc["score"] = self.base if self.weights is None else {"base": self.base, "weights": dict(self.weights)}
        if self.priority is not None:
            doc["priority"] = self.priority
        if self.cap is not None:
            doc["cap"] = {"max": self.cap[0], "within": self.cap[1]}
        if self.valid is not None:
            start, end = self.valid
            doc["valid"] = {key: at(hours) for key, hours in (("from", start), ("until", end)) if hours is not None}
        return doc


@st.composite
def gen_offer(draw: st.DrawFn, offer_id: str) -> GenOffer:
    valid = None
    if draw(st.integers(0, 2)) == 0:
        start, end = sorted(draw(st.lists(st.sampled_from(VALID_HOURS), min_size=2, max_size=2, unique=True)))
        valid = draw(st.sampled_from([(start, end), (start, None), (None, end)]))
    return GenOffer(
        id=offer_id,
        channel=draw(st.sampled_from(("instore", *OFFER_CHANNELS))),
        fallback=tuple(draw(st.lists(st.sampled_from(OFFER_CHANNELS), max_size=2, unique=True))),
        where=tuple(draw(st.just([]) | st.lists(st.sampled_from(CONDITIONS), max_size=2, unique_by=lambda c: c[0]))),
        base=draw(st.sampled_from((0, 1, 5, 10, 10.5, -3))),
        weights=draw(st.none() | st.lists(
            st.tuples(st.sampled_from(WEIGHT_PATHS), st.sampled_from((-1, -0.5, 0.25, 0.5, 1, 2))),
            max_size=3, unique_by=lambda w: w[0]).map(tuple)),
        priority=draw(st.sampled_from((None, 0, 40, 50, 60, 100))),
        cap=draw(st.none() | st.tuples(st.integers(1, 2), st.sampled_from(tuple(WINDOWS)))),
        valid=valid,
    )  # fmt: skip


EVENT_PROPS: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "store_visit": st.fixed_dictionaries(
        {"store_id": st.sampled_from(("milano-1", "roma-2"))}, optional={"n": st.sampled_from((3, -2, "x", 1.5))}
    ),
    "cart_add": st.fixed_dictionaries({"sku": st.sampled_from(("A", "B")), "price": st.sampled_from((5, 15, 40))}),
    "purchase": st.fixed_dictionaries({"order_id": st.just("o-1"), "value": st.sampled_from((10, 50))}),
    "consent_update": st.fixed_dictionaries(
        {"channel": st.sampled_from(("email", "push", "sms")), "granted": st.booleans()}
    ),
    "identify": st.fixed_dictionaries({}, optional={"tier": st.sampled_from(("gold", "silver")),
                                                    "points": st.sampled_from((5, 20, "many")), "vip": st.booleans()}),
    "page_view": st.fixed_dictionaries({"url": st.sampled_from(("/", "/sale"))}),
}
GAPS = (0, 60_000, HOUR // 2, HOUR, 6 * HOUR, DAY, 2 * DAY)


@st.composite
def customer_log(draw: st.DrawFn, customers: tuple[str, ...] = ("c-1", "c-2"), size: int = 14,
                 types: tuple[str, ...] = ("store_visit", "store_visit", "consent_update", *EVENT_PROPS)
                 ) -> list[Event]:  # fmt: skip
    """Events of one or two customers, in time order (ties: this order), over up to a few days."""
    t = BASE + draw(st.sampled_from((-HOUR, 0, 5 * HOUR)))
    events = []
    for number in range(draw(st.integers(1, size))):
        t += draw(st.sampled_from(GAPS))
        kind = draw(st.sampled_from(types))
        events.append(event_from_document({
            "event_id": f"e-{number:03d}", "type": kind, "occurred_at": format_ms(t),
            "channel": draw(st.sampled_from(("web", "store", "app"))), "customer_id": draw(st.sampled_from(customers)),
            "properties": draw(EVENT_PROPS[kind]),
        }))  # fmt: skip
    return events


def value_at(path: str, event: dict[str, Any], profile: dict[str, Any]) -> Any:
    root, *parts = path.split(".")
    value: Any = profile if root == "profile" else event  # the decide journeys enter and decide on one event
    for part in parts:
        value = value.get(part) if isinstance(value, dict) else None
    return value


def holds(condition: tuple[str, str, Any], event: dict[str, Any], profile: dict[str, Any]) -> bool:
    path, op, want = condition
    got = value_at(path, event, profile)
    if op == "eq":
        return bool(got == want)
    if op == "ne":
        return bool(got != want)
    if got is None or isinstance(got, bool) != isinstance(want, bool):
        return False
    try:
        return ORDERED[op](got, want)
    except TypeError:  # text against a number
        return False


def brute_score(offer: GenOffer, event: dict[str, Any], profile: dict[str, Any]) -> float:
    total = float(offer.base)
    for path, weight in offer.weights or ():
        value = value_at(path, event, profile)
        if isinstance(value, int | float) and not isinstance(value, bool):
            total += weight * value
    return total


@dataclass
class Expected:
    eligible: list[tuple[str, float, str]] = field(default_factory=list)  # (id, score, channel), best first
    out: list[tuple[str, str]] = field(default_factory=list)  # (id, reason), in the step's order

    def candidates(self) -> list[dict[str, Any]]:
        return [{"offer": o, "score": s} for o, s, _ in self.eligible] + [{"offer": o, "out": r} for o, r in self.out]


def brute_force(
    catalogue: dict[str, GenOffer], candidates: Iterable[str], now: int, event: dict[str, Any],
    profile: dict[str, Any], earlier: dict[str, list[int]], needs_consent: frozenset[str],
) -> Expected:  # fmt: skip
    """The contract's eligibility (valid, where, cap, channel: out for the first that fails) and ranking."""
    found = Expected()
    for offer_id in candidates:
        offer = catalogue[offer_id]
        start, end = offer.valid or (None, None)
        if (start is not None and now < BASE + start * HOUR) or (end is not None and now >= BASE + end * HOUR):
            found.out.append((offer_id, "not_valid"))
            continue
        if not all(holds(condition, event, profile) for condition in offer.where):
            found.out.append((offer_id, "not_eligible"))
            continue
        if offer.cap is not None:
            most, window = offer.cap
            if sum(1 for when in earlier.get(offer_id, ()) if now - WINDOWS[window] < when <= now) >= most:
                found.out.append((offer_id, "capped"))
                continue
        allowed = [c for c in (offer.channel, *offer.fallback) if c not in needs_consent
                   or profile["consent"].get(c) is True]  # fmt: skip
        if not allowed:
            found.out.append((offer_id, "no_consent"))
            continue
        found.eligible.append((offer_id, round(brute_score(offer, event, profile), 6), allowed[0]))
    priority = {o.id: 50 if o.priority is None else o.priority for o in catalogue.values()}
    found.eligible.sort(key=lambda e: (-e[1], -priority[e[0]], e[0]))
    return found


@st.composite
def nba_case(draw: st.DrawFn) -> tuple[dict[str, GenOffer], list[str], int, list[Event]]:
    ids = draw(st.lists(st.sampled_from(OFFER_IDS), min_size=1, max_size=len(OFFER_IDS), unique=True))
    catalogue = {offer_id: draw(gen_offer(offer_id)) for offer_id in ids}
    order = draw(st.permutations(ids))
    candidates = order[: draw(st.integers(1, len(order)))]
    return catalogue, candidates, draw(st.integers(1, 3)), draw(customer_log())


@PROPERTY
@given(case=nba_case())
def test_the_pick_is_the_brute_force_ranking_of_the_eligible_offers(
    case: tuple[dict[str, GenOffer], list[str], int, list[Event]],
) -> None:
    catalogue, candidates, pick, events = case
    spec = {"id": "nba", "trigger": {"event": "store_visit"}, "reentry": "always",
            "steps": [{"id": "choose", "decide": {"offers": candidates, "pick": pick}}]}  # fmt: skip
    engine = Engine([Journey.model_validate(spec)], CONSENT,
                    catalogue=Catalogue.model_validate({"offers": [o.doc() for o in catalogue.values()]}))  # fmt: skip
    sim = Simulator(engine)
    earlier: dict[str, dict[str, list[int]]] = defaultdict(dict)  # customer -> offer -> send times, recounted
    for event in events:
        done = sim.feed(event)
        decided = [r for r in done.audit if r["kind"] == "decided"]
        if event.type != "store_visit":
            assert decided == [] and done.actions == []
            continue
        profile = done.state.profile if done.state is not None else {}
        mine = earlier[event.customer]
        expected = brute_force(catalogue, candidates, event.ts, event.data, profile, mine, NEEDS_CONSENT)
        assert len(decided) == 1
        record = decided[0]
        assert record["candidates"] == expected.candidates(), (record, expected)
        assert record["picked"] == [o for o, _, _ in expected.eligible[:pick]]
        assert record["explore"] is False and record["step"] == "choose"
        assert [(a["offer"], a["channel"], a["template"], "explore" in a) for a in done.actions] == [
            (o, channel, f"t-{o}", False) for o, _, channel in expected.eligible[:pick]
        ]
        for action in done.actions:
            mine.setdefault(action["offer"], []).append(event.ts)
        for reason in {r for _, r in expected.out} | ({"picked"} if expected.eligible else set()):
            note_event(reason)
        if len({s for _, s, _ in expected.eligible}) < len(expected.eligible):
            note_event("a tie of scores")
        if not expected.eligible:  # nothing eligible, no on_none: the run just goes on (and completes)
            assert [r["reason"] for r in done.audit if r["kind"] == "exited"] == ["completed"]


def test_ranking_ties_go_to_priority_then_id_and_each_reason_is_the_first_that_fails() -> None:
    catalogue = offers("""
offers:
  - {id: b, channel: instore, template: b, score: 10, priority: 60}
  - {id: a, channel: instore, template: a, score: 10, priority: 60}
  - {id: c, channel: instore, template: c, score: {base: 5, weights: {profile.cart_value: 0.1}}}
  - {id: d, channel: instore, template: d, score: 10, priority: 70}
  - {id: expired, channel: email, template: x, where: {profile.cart_value: {gte: 1000}},
     valid: {until: "2026-03-01T00:00:00Z"}}
  - {id: rich, channel: email, template: x, where: {profile.cart_value: {gte: 1000}}, cap: {max: 1, within: 1d}}
  - {id: mail, channel: email, template: x}
""")
    j = journey("""
id: nba
trigger: {event: store_visit}
steps: [{id: choose, decide: {offers: [a, b, c, d, expired, rich, mail], pick: 3}}]
""")
    events = [ev("cart_add", at(0), sku="A", price=60), ev("store_visit", at(1), store_id="milano-1")]
    result = simulate(j, catalogue, events, CONSENT)
    (record,) = kinds(result, "decided")
    assert record["candidates"] == [
        {"offer": "c", "score": 11.0}, {"offer": "d", "score": 10.0}, {"offer": "a", "score": 10.0},
        {"offer": "b", "score": 10.0}, {"offer": "expired", "out": "not_valid"},
        {"offer": "rich", "out": "not_eligible"}, {"offer": "mail", "out": "no_consent"},
    ]  # fmt: skip
    assert record["picked"] == ["c", "d", "a"]
    assert [a["offer"] for a in result.actions] == ["c", "d", "a"]


def test_a_score_is_base_plus_weighted_numbers_and_anything_else_counts_0() -> None:
    catalogue = offers("""
offers:
  - id: s
    channel: instore
    template: s
    score:
      base: 1
      weights: {profile.cart_value: 0.5, profile.events.store_visit: 2, profile.traits.vip: 100,
                profile.traits.tier: 100, profile.traits.nothing: 100, event.properties.n: 100, entry.properties.m: -1}
""")
    j = journey("id: nba\ntrigger: {event: store_visit}\nsteps: [{decide: {offers: [s]}}]")
    events = [ev("identify", at(0), vip=True, tier="gold"), ev("cart_add", at(0), sku="A", price=21),
              ev("store_visit", at(1), store_id="s", n="12", m=3)]  # fmt: skip
    (record,) = kinds(simulate(j, catalogue, events), "decided")
    assert record["candidates"] == [{"offer": "s", "score": 1 + 0.5 * 21 + 2 * 1 - 3}]


# ==================================================================== 2. caps hold over any window


def over_cap(times: list[int], most: int, window: int) -> list[int]:
    """The send times at which some window of `window` ms, ending there, holds more than `most` sends. (Any window
    holds at most as many sends as the window of the same length that ends at its last send.)"""
    ordered = sorted(times)
    return [t for t in ordered if sum(1 for u in ordered if t - window < u <= t) > most]


CAP_POLICIES = (
    OPEN,
    Policy.model_validate({"consent_required": [], "max_per_day": {"email": 3},
                           "quiet_hours": {"start": "21:00", "end": "08:00", "channels": ["email", "push"]}}),
)  # fmt: skip


@st.composite
def capped_case(draw: st.DrawFn) -> tuple[Catalogue, dict[str, tuple[int, int]], list[Journey], Policy, list[Event]]:
    ids = draw(st.lists(st.sampled_from(("x", "y", "z")), min_size=1, max_size=3, unique=True))
    docs, caps = [], {}
    for offer_id in ids:
        most, within = draw(st.integers(1, 3)), draw(st.sampled_from(("2h", "1d", "3d")))
        caps[offer_id] = (most, {"2h": 2 * HOUR, "1d": DAY, "3d": 3 * DAY}[within])
        docs.append({"id": offer_id, "channel": draw(st.sampled_from(("instore", "email", "push"))),
                     "fallback": ["instore"], "template": f"t-{offer_id}", "score": draw(st.sampled_from((1, 2, 3))),
                     "cap": {"max": most, "within": within},
                     **draw(st.sampled_from(({}, {"where": {"profile.cart_value": {"gte": 10}}}))),
                     })  # fmt: skip
    journeys = []
    for number in range(draw(st.integers(2, 3))):
        steps: list[dict[str, Any]] = []
        for _ in range(draw(st.integers(1, 2))):
            wait = draw(st.sampled_from((None, "30m", "1d")))
            if wait:
                steps.append({"wait": wait})
            chosen = draw(st.lists(st.sampled_from(ids), min_size=1, unique=True))
            steps.append({"decide": {"offers": chosen, "pick": draw(st.integers(1, 3)),
                                     "explore": draw(st.sampled_from(("0%", "50%")))}})  # fmt: skip
        journeys.append(Journey.model_validate({
            "id": f"j-{number}", "trigger": {"event": draw(st.sampled_from(("store_visit", "cart_add", "page_view")))},
            "reentry": "always", "priority": draw(st.sampled_from((10, 50, 90))), "steps": steps,
        }))  # fmt: skip
    events = draw(customer_log(size=25, types=("store_visit", "cart_add", "page_view", "purchase")))
    return Catalogue.model_validate({"offers": docs}), caps, journeys, draw(st.sampled_from(CAP_POLICIES)), events


@PROPERTY
@given(case=capped_case())
def test_a_capped_offer_is_never_sent_more_often_than_its_cap_in_any_window(
    case: tuple[Catalogue, dict[str, tuple[int, int]], list[Journey], Policy, list[Event]],
) -> None:
    catalogue, caps, journeys, pol, events = case
    engine = Engine(journeys, pol, catalogue=catalogue)
    result = Simulator(engine).run(events)
    times: dict[tuple[str, str], list[int]] = defaultdict(list)
    for action in result.actions:
        times[(action["customer_id"], action["offer"])].append(to_ms(parse_rfc3339(action["at"])))
    for (customer, offer_id), sent_at in times.items():
        most, window = caps[offer_id]
        assert over_cap(sent_at, most, window) == [], (customer, offer_id, [format_ms(t) for t in sent_at])
    capped = any(c.get("out") == "capped" for r in kinds(result, "decided") for c in r["candidates"])
    note_event("some offer capped" if capped else "no offer capped")


def test_the_cap_counts_sends_from_every_journey_and_frees_up_after_its_window() -> None:
    catalogue = offers("offers: [{id: x, channel: instore, template: x, cap: {max: 2, within: 1d}}]")
    visit = journey("id: visit\ntrigger: {event: store_visit}\nreentry: always\nsteps: [{decide: {offers: [x]}}]")
    cart = journey("id: cart\ntrigger: {event: cart_add}\nreentry: always\nsteps: [{decide: {offers: [x]}}]")
    events = [ev("store_visit", at(0), store_id="s"), ev("cart_add", at(1), sku="A", price=1),
              ev("store_visit", at(2), store_id="s"), ev("cart_add", at(23.99), sku="A", price=1),
              ev("store_visit", at(24), store_id="s")]  # fmt: skip
    result = simulate([visit, cart], catalogue, events)
    assert [(a["at"], a["journey"]) for a in result.actions] == [(at(0), "visit"), (at(1), "cart"), (at(24), "visit")]
    assert [r["candidates"][0].get("out") for r in kinds(result, "decided")] == [None, None, "capped", "capped", None]


def test_a_late_event_cannot_put_more_sends_than_the_cap_into_one_window() -> None:
    """The worker runs a late event at its own event time, after a timer of a later time fired: the decision then
    must count the later send too, or one window of the cap's length would hold two sends of an offer capped at 1."""
    catalogue = offers("offers: [{id: x, channel: instore, template: x, cap: {max: 1, within: 1d}}]")
    later = journey("id: later\ntrigger: {event: cart_add}\nsteps: [{wait: 10h}, {decide: {offers: [x]}}]")
    visit = journey("id: visit\ntrigger: {event: store_visit}\nreentry: always\nsteps: [{decide: {offers: [x]}}]")
    engine = Engine([later, visit], OPEN, catalogue=catalogue)
    state = CustomerState("c-1")
    (timer,) = engine.on_event(state, ev("cart_add", at(0), sku="A", price=1), BASE).timers
    assert [a["at"] for a in engine.on_timer(state, timer, timer.due).actions] == [at(10)]
    late = engine.on_event(state, ev("store_visit", at(1), store_id="s"), BASE + HOUR)  # arrives after the timer
    assert late.actions == []
    assert [c["out"] for r in late.audit if r["kind"] == "decided" for c in r["candidates"]] == ["capped"]
    after = engine.on_event(state, ev("store_visit", at(34), store_id="s"), BASE + 34 * HOUR)  # a day after 10:00
    assert [a["at"] for a in after.actions] == [at(34)]


# ============================================================================================ 3. explore

STORE = """
offers:
  - {id: cart-10, channel: instore, template: cart-10, score: 40, tags: [store]}
  - {id: double-points, channel: instore, template: points, score: 30, tags: [store]}
  - {id: free-gift, channel: instore, template: gift, score: 20, tags: [store]}
  - {id: tote, channel: instore, template: tote, score: 10, tags: [store]}
  - {id: gold-only, channel: instore, template: gold, score: 99, where: {profile.traits.tier: gold}, tags: [store]}
"""
EXPLORE = """
id: web-to-store
trigger: {event: store_visit}
steps:
  - id: store-offer
    decide: {offers: {tags: [store]}, pick: PICK, explore: 10%}
"""
CUSTOMERS = [f"c-{n:05d}" for n in range(10_000)]


def decide_all(j: Journey, customers: Iterable[str]) -> dict[str, tuple[Record, list[Record]]]:
    """Each customer's `decided` record and actions after one store visit, each through the pure engine."""
    engine = Engine([j], OPEN, catalogue=offers(STORE))
    found = {}
    for key in customers:
        out = engine.on_event(CustomerState(key), ev("store_visit", at(0), customer=key, store_id="s"), BASE)
        (record,) = (r for r in out.audit if r["kind"] == "decided")
        found[key] = (record, out.actions)
    return found


def test_explore_share_is_the_declared_one_stable_and_uniform_over_the_eligible_offers() -> None:
    j = journey(EXPLORE.replace("PICK", "1"))
    decided = decide_all(j, CUSTOMERS)
    explored = {key: actions[0]["offer"] for key, (record, actions) in decided.items() if record["explore"]}
    assert 0.085 <= len(explored) / len(CUSTOMERS) <= 0.115  # 10 % ± 1.5 points
    # The others get the best eligible offer; explored ones a uniformly chosen eligible one (gold-only is out).
    for key, (record, actions) in decided.items():
        assert len(actions) == 1 and record["picked"] == [actions[0]["offer"]]
        assert ("explore" in actions[0]) is record["explore"] is (key in explored)
        if key not in explored:
            assert actions[0]["offer"] == "cart-10" and "explore" not in actions[0]
        else:
            assert actions[0]["explore"] is True
    counts = Counter(explored.values())
    assert set(counts) == {"cart-10", "double-points", "free-gift", "tote"}
    expected = len(explored) / 4
    chi_square = sum((n - expected) ** 2 / expected for n in counts.values())
    assert chi_square < 16.27, counts  # 3 degrees of freedom, p = 0.001
    assert all(abs(n - expected) < 0.2 * expected for n in counts.values()), counts
    # Stable: another engine, the customers in another order, gives the same explored set and the same offers.
    again = decide_all(j, reversed(CUSTOMERS))
    assert {key: actions[0]["offer"] for key, (record, actions) in again.items() if record["explore"]} == explored


def test_explore_hashes_journey_and_step_and_only_the_explored_pick_says_so() -> None:
    base = decide_all(journey(EXPLORE.replace("PICK", "1")), CUSTOMERS[:3000])
    other_step = decide_all(journey(EXPLORE.replace("PICK", "1").replace("id: store-offer", "id: other")),
                            CUSTOMERS[:3000])  # fmt: skip
    explored = {k for k, (r, _) in base.items() if r["explore"]}
    elsewhere = {k for k, (r, _) in other_step.items() if r["explore"]}
    assert explored != elsewhere and 0.07 < len(elsewhere) / 3000 < 0.13
    assert len(explored & elsewhere) < 0.5 * len(explored)  # about independent: ~10 % of them overlap
    # pick 2: an explored customer's uniformly chosen offer first, then the best of the others; only it is tagged.
    two = decide_all(journey(EXPLORE.replace("PICK", "2")), CUSTOMERS[:3000])
    for key, (record, actions) in two.items():
        offers_sent = [a["offer"] for a in actions]
        assert offers_sent == record["picked"] and len(set(offers_sent)) == 2
        if record["explore"]:
            assert actions[0]["explore"] is True and "explore" not in actions[1]
            assert actions[0]["offer"] == base[key][1][0]["offer"]  # the same uniform choice as with pick 1
            assert actions[1]["offer"] == ("double-points" if actions[0]["offer"] == "cart-10" else "cart-10")
        else:
            assert offers_sent == ["cart-10", "double-points"] and all("explore" not in a for a in actions)


def test_no_eligible_offer_means_no_exploring() -> None:
    j = journey(EXPLORE.replace("PICK", "1").replace("explore: 10%", "explore: 100%"))
    engine = Engine([j], OPEN, catalogue=offers("offers: [{id: gold-only, channel: instore, template: g, "
                                                "where: {profile.traits.tier: gold}, tags: [store]}]"))  # fmt: skip
    out = engine.on_event(CustomerState("c-1"), ev("store_visit", at(0), store_id="s"), BASE)
    (record,) = (r for r in out.audit if r["kind"] == "decided")
    assert record["picked"] == [] and record["explore"] is False and out.actions == []


# ===================================================================== 4. on_none and what comes next

ON_NONE = """
id: nba
trigger: {event: store_visit}
reentry: always
steps:
  - id: choose
    decide: {offers: [big]}
    on_none:
      - {wait: 1h}
      - {id: sorry, send: {channel: instore, template: sorry}}
  - {id: after, send: {channel: instore, template: after}}
"""
BIG = offers("offers: [{id: big, channel: instore, template: big, where: {profile.cart_value: {gte: 50}}}]")


def test_on_none_runs_when_no_offer_is_eligible_then_the_journey_goes_on() -> None:
    result = simulate(journey(ON_NONE), BIG, [ev("store_visit", at(0), store_id="s")])
    assert sent(result) == [(at(1), "-", "sorry"), (at(1), "-", "after")]
    assert [(r["at"], r["step"], r["type"]) for r in kinds(result, "step")] == [
        (at(0), "choose", "decide"), (at(0), "steps.0.on_none.0", "wait"), (at(1), "sorry", "send"),
        (at(1), "after", "send")]  # fmt: skip
    assert [r["reason"] for r in kinds(result, "exited")] == ["completed"]
    assert kinds(result, "decided")[0]["candidates"] == [{"offer": "big", "out": "not_eligible"}]


def test_the_journey_goes_on_after_a_decide_with_picks_and_skips_on_none() -> None:
    events = [ev("cart_add", at(0), sku="A", price=60), ev("store_visit", at(1), store_id="s")]
    result = simulate(journey(ON_NONE), BIG, events)
    assert sent(result) == [(at(1), "big", "big"), (at(1), "-", "after")]
    assert "sorry" not in {r.get("step") for r in result.audit}
    assert [r["reason"] for r in kinds(result, "exited")] == ["completed"]


def test_without_on_none_a_decide_with_no_pick_goes_straight_on() -> None:
    j = journey(ON_NONE.replace("    on_none:\n      - {wait: 1h}\n      - {id: sorry, send: {channel: instore, "
                                "template: sorry}}\n", ""))  # fmt: skip
    result = simulate(j, BIG, [ev("store_visit", at(0), store_id="s")])
    assert sent(result) == [(at(0), "-", "after")]


# ========================================================================== 5. holdout and quiet hours


def test_a_holdout_run_decides_and_audits_but_suppresses_every_pick() -> None:
    j = journey(ON_NONE.replace("reentry: always", "reentry: always\nholdout: 100%").replace("[big]", "[big, gift]"))
    catalogue = offers("""
offers:
  - {id: big, channel: instore, template: big, score: 1}
  - {id: gift, channel: push, template: gift, score: 2}
""")
    pol = policy("consent_required: []\nquiet_hours: {start: '21:00', end: '08:00', channels: [push]}")
    result = simulate(j, catalogue, [ev("store_visit", "2026-03-02T22:00:00Z", store_id="s")], pol)
    assert result.actions == []
    (record,) = kinds(result, "decided")
    assert record["picked"] == ["gift"] and record["candidates"] == [{"offer": "gift", "score": 2.0},
                                                                     {"offer": "big", "score": 1.0}]  # fmt: skip
    assert [(r["step"], r["template"], r["reason"], r.get("offer")) for r in kinds(result, "suppressed")] == [
        ("choose", "gift", "holdout", "gift"), ("after", "after", "holdout", None)]  # fmt: skip
    assert kinds(result, "deferred") == []  # holdout comes before quiet hours: the push pick is not held back
    assert result.states["c-1"].offer_sends == {}  # a suppressed pick is no send: it does not count for the cap


QUIET = policy("consent_required: []\nquiet_hours: {start: '21:00', end: '08:00', channels: [push]}")
NIGHT = "2026-03-02T22:00:00Z"
MORNING = "2026-03-03T08:00:00Z"


def test_a_pick_on_a_quiet_channel_defers_the_decision_which_is_taken_again_when_quiet_hours_end() -> None:
    catalogue = offers("""
offers:
  - {id: push-deal, channel: push, template: push-deal, score: 5, valid: {until: "2026-03-03T07:00:00Z"}}
  - {id: push-late, channel: push, template: push-late, score: 3}
  - {id: till, channel: instore, template: till, score: 1}
""")
    j = journey(ON_NONE.replace("[big]", "[push-deal, push-late, till]"))
    result = simulate(j, catalogue, [ev("store_visit", NIGHT, store_id="s")], QUIET)
    first, second = kinds(result, "decided")
    assert (first["at"], first["picked"]) == (NIGHT, ["push-deal"])
    assert [(r["at"], r["offer"], r["until"]) for r in kinds(result, "deferred")] == [(NIGHT, "push-deal", MORNING)]
    # Decided again at 08:00: the first offer's validity ended meanwhile, so the next best one goes.
    assert (second["at"], second["picked"]) == (MORNING, ["push-late"])
    assert second["candidates"][-1] == {"offer": "push-deal", "out": "not_valid"}
    assert sent(result) == [(MORNING, "push-late", "push-late"), (MORNING, "-", "after")]
    assert [r["step"] for r in kinds(result, "step")].count("choose") == 1  # one step record: the decide, resumed


def test_a_pick_on_a_loud_channel_is_sent_at_once_in_quiet_hours() -> None:
    catalogue = offers("offers: [{id: till, channel: instore, template: till}, {id: p, channel: push, template: p, "
                       "score: -1}]")  # fmt: skip
    result = simulate(journey(ON_NONE.replace("[big]", "[till, p]")), catalogue,
                      [ev("store_visit", NIGHT, store_id="s")], QUIET)  # fmt: skip
    assert sent(result) == [(NIGHT, "till", "till"), (NIGHT, "-", "after")]
    assert kinds(result, "deferred") == []


def test_with_several_picks_one_quiet_pick_defers_the_whole_decision() -> None:
    """Each pick goes through the policy, but a decision is taken as a whole: the in-store pick waits with the push
    one rather than being sent now and perhaps picked again when the decision is taken again."""
    catalogue = offers("offers: [{id: till, channel: instore, template: till, score: 2}, "
                       "{id: p, channel: push, template: p, score: 1}]")  # fmt: skip
    j = journey(ON_NONE.replace("{offers: [big]}", "{offers: [till, p], pick: 2}"))
    result = simulate(j, catalogue, [ev("store_visit", NIGHT, store_id="s")], QUIET)
    assert [(r["offer"], r["until"]) for r in kinds(result, "deferred")] == [("p", MORNING)]
    assert sent(result) == [(MORNING, "till", "till"), (MORNING, "p", "p"), (MORNING, "-", "after")]
    assert len(kinds(result, "decided")) == 2
    state = result.states["c-1"]
    morning = to_ms(parse_rfc3339(MORNING))
    assert state.runs == {} and state.offer_sends == {"till": [morning], "p": [morning]}


def test_a_deferred_decision_waits_with_a_defer_timer() -> None:
    catalogue = offers("offers: [{id: p, channel: push, template: p}]")
    engine = Engine([journey(ON_NONE.replace("[big]", "[p]"))], QUIET, catalogue=catalogue)
    state = CustomerState("c-1")
    out = engine.on_event(state, ev("store_visit", NIGHT, store_id="s"), to_ms(parse_rfc3339(NIGHT)))
    (timer,) = out.timers
    run = state.runs["nba"]
    assert run.wait is not None and (run.wait.kind, run.wait.step) == (DEFER, "steps.0")
    assert timer.due == to_ms(parse_rfc3339(MORNING))
    resumed = engine.on_timer(state, timer, timer.due)
    assert [(a["offer"], a["at"]) for a in resumed.actions if "offer" in a] == [("p", MORNING)]


# =============================================================================== 6. action ids and tags


def test_action_ids_are_deterministic_and_distinct_per_picked_offer_and_run() -> None:
    catalogue = offers("""
offers:
  - {id: a, channel: instore, template: t, score: 3, coupon: {discount_percent: 10, valid_for: 2d}}
  - {id: b, channel: instore, template: t, score: 2}
  - {id: c, channel: instore, template: t, score: 1}
""")
    j = journey("id: nba\ntrigger: {event: store_visit}\nreentry: always\n"
                "steps: [{id: choose, decide: {offers: [a, b, c], pick: 3}}]")  # fmt: skip
    events = [ev("store_visit", at(0), store_id="s", event_id="v1"), ev("store_visit", at(1), store_id="s",
                                                                       event_id="v2")]  # fmt: skip
    first, second = simulate(j, catalogue, events), simulate(j, catalogue, events)
    assert first.actions == second.actions
    ids = [a["action_id"] for a in first.actions]
    assert len(ids) == 6 and len(set(ids)) == 6
    assert [(a["offer"], a["step"]) for a in first.actions] == [("a", "choose"), ("b", "choose"), ("c", "choose")] * 2
    assert list(first.actions[0]) == ["action_id", "at", "channel", "template", "customer_id", "journey",
                                      "journey_version", "step", "data", "coupon", "offer", "event_id"]  # fmt: skip
    assert all("explore" not in a for a in first.actions)
    assert {r["action_id"] for r in kinds(first, "sent")} == set(ids)
    assert [r["offer"] for r in kinds(first, "sent")] == ["a", "b", "c"] * 2
    # A coupon's code is keyed on the action id, so each picked offer's coupon is its own.
    assert first.states["c-1"].profile["offers"][first.actions[0]["coupon"]["code"]]["action_id"] == ids[0]


def test_an_explored_action_carries_explore_true() -> None:
    catalogue = offers("offers: [{id: a, channel: instore, template: t, score: 3}, "
                       "{id: b, channel: instore, template: t, score: 2}]")  # fmt: skip
    j = journey("id: nba\ntrigger: {event: store_visit}\nsteps: [{decide: {offers: [a, b], explore: 100%}}]")
    result = simulate(j, catalogue, [ev("store_visit", at(0), customer=k, store_id="s") for k in CUSTOMERS[:200]])
    assert all(a["explore"] is True for a in result.actions) and len(result.actions) == 200
    assert {a["offer"] for a in result.actions} == {"a", "b"}
    assert all(r["explore"] is True for r in kinds(result, "sent"))


# =========================================================================== 7. recommendations

SKUS = ("A", "B", "C", "D", "E")
TOPS = {"after-purchase": 3, "cart-recs": 2, "recs-offer": 1}
RECOMMEND_JOURNEYS = [
    journey("""
id: after-purchase
trigger: {event: purchase}
reentry: always
steps:
  - wait: 2h
  - send: {channel: email, template: after-purchase, recommend: {for: entry.properties.items, top: 3}}
"""),
    journey("""
id: cart-recs
trigger: {event: cart_add}
reentry: always
steps: [{send: {channel: push, template: cart-recs, recommend: {for: profile.cart, top: 2}}}]
"""),
    journey("""
id: store
trigger: {event: store_visit}
reentry: always
steps: [{decide: {offers: [recs-offer]}}]
"""),
]  # fmt: skip
RECS_OFFER = offers("""
offers: [{id: recs-offer, channel: instore, template: recs-offer, recommend: {for: profile.cart, top: 1}}]
""")
ITEMS = st.lists(st.sampled_from(SKUS), min_size=1, max_size=3, unique=True)


@st.composite
def basket_logs(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Cart adds, removals, purchases (with items as skus or objects, or none: the cart) and store visits of a few
    customers over a day or two, in time order."""
    t = BASE
    docs = []
    for number in range(draw(st.integers(1, 40))):
        t += draw(st.sampled_from((0, 60_000, 20 * 60_000, HOUR, 3 * HOUR)))
        kind = draw(st.sampled_from(("cart_add", "cart_add", "cart_remove", "purchase", "purchase", "store_visit")))
        if kind == "cart_add":
            props: dict[str, Any] = {"sku": draw(st.sampled_from(SKUS)), "price": 10}
        elif kind == "cart_remove":
            props = {"sku": draw(st.sampled_from(SKUS))}
        elif kind == "purchase":
            props = {"order_id": f"o-{number}", "value": 20}
            items = draw(st.none() | ITEMS)
            if items is not None:
                props["items"] = items if draw(st.booleans()) else [{"sku": s, "quantity": 1} for s in items]
        else:
            props = {"store_id": "s"}
        docs.append({"event_id": f"e-{number:03d}", "type": kind, "occurred_at": format_ms(t), "channel": "web",
                     "customer_id": draw(st.sampled_from(("c-1", "c-2", "c-3", "c-4"))), "properties": props})
    return docs


@dataclass
class Shopper:
    """What the customer's cart and purchases are, recounted from the events."""

    cart: dict[str, None] = field(default_factory=dict)
    bought: set[str] = field(default_factory=set)

    def see(self, doc: dict[str, Any]) -> None:
        props = doc["properties"]
        if doc["type"] == "cart_add":
            self.cart[props["sku"]] = None
        elif doc["type"] == "cart_remove":
            self.cart.pop(props["sku"], None)
        elif doc["type"] == "purchase":
            items = props.get("items")
            self.bought |= {i["sku"] if isinstance(i, dict) else i for i in items} if items else set(self.cart)
            self.cart = {}


def check_recommended(actions: list[Record], shoppers: dict[str, Shopper], docs: dict[str, dict[str, Any]]) -> int:
    """Every action's `data.recommended` against the customer's cart and purchases now; the non-empty ones."""
    found = 0
    for action in actions:
        top = TOPS[action["template"]]
        shopper = shoppers[action["customer_id"]]
        if action["template"] == "after-purchase":
            items = docs[action["event_id"]]["properties"].get("items") or []
            wanted = {i["sku"] if isinstance(i, dict) else i for i in items}
        else:
            wanted = set(shopper.cart)
        recommended = action["data"]["recommended"]
        skus = [r["sku"] for r in recommended]
        assert len(skus) <= top and len(set(skus)) == len(skus), action
        assert not set(skus) & (wanted | set(shopper.cart) | shopper.bought), (action, shopper)
        assert all(set(r) == {"sku", "score", "source"} and r["source"] in ("affinity", "popular") for r in recommended)
        assert "model_version" in action and action["model_version"] <= action["at"]
        assert to_ms(parse_rfc3339(action["model_version"])) % HOUR == 0
        found += bool(skus)
    return found


@settings(max_examples=100, deadline=None, derandomize=True)
@given(docs=basket_logs())
def test_recommendations_leave_out_the_items_the_cart_and_earlier_purchases(docs: list[dict[str, Any]]) -> None:
    sim = Simulator(Engine(RECOMMEND_JOURNEYS, OPEN, catalogue=RECS_OFFER))
    shoppers: dict[str, Shopper] = defaultdict(Shopper)
    by_id = {doc["event_id"]: doc for doc in docs}
    for doc in docs:
        event = event_from_document(doc)
        before = len(sim.result.actions)
        sim.advance_to(event.ts)  # timers due by then fire first, on the state before the event
        check_recommended(sim.result.actions[before:], shoppers, by_id)
        shoppers[doc["customer_id"]].see(doc)  # the profile effects come before any journey sees the event
        done = sim.feed(event)
        check_recommended(done.actions, shoppers, by_id)
    before = len(sim.result.actions)
    sim.advance_to(None)
    check_recommended(sim.result.actions[before:], shoppers, by_id)
    note_event("some recommended" if any(a["data"]["recommended"] for a in sim.result.actions) else "none recommended")


def test_recommendations_are_learned_from_other_baskets_and_leave_out_what_the_customer_has() -> None:
    events = [
        *(ev("purchase", at(0), customer=f"c-{n}", order_id=f"o-{n}", value=10, items=["A", "B"]) for n in range(3)),
        ev("purchase", at(0), customer="c-4", order_id="o-4", value=10, items=["E"]),
        ev("purchase", at(0), customer="c-9", order_id="o-8", value=10, items=["D"]),
        ev("purchase", at(2), customer="c-9", order_id="o-9", value=10, items=[{"sku": "A"}]),
        ev("cart_add", at(2.5), customer="c-9", sku="C", price=5),
    ]  # fmt: skip
    result = simulate(RECOMMEND_JOURNEYS, RECS_OFFER, events, until=at(6))
    (action,) = [a for a in result.actions if a["template"] == "after-purchase" and a["customer_id"] == "c-9"
                 and a["at"] == at(4)]  # fmt: skip
    # B is bought with A (affinity); E fills up as a best seller; A (the items), C (the cart), D (bought) are out.
    assert [(r["sku"], r["source"]) for r in action["data"]["recommended"]] == [("B", "affinity"), ("E", "popular")]
    assert action["model_version"] == at(4)
    (in_cart,) = [a for a in result.actions if a["template"] == "cart-recs" and a["customer_id"] == "c-9"]
    assert [r["sku"] for r in in_cart["data"]["recommended"]] == ["B", "E"]  # C is the item and in the cart
