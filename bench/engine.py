"""Micro-benchmark of the pure engine: events per second on one core, and what next best action costs.

    python -m bench.engine [--customers 100000] [--events 500000] [--skus 10000] [--offers 50] [--seed 7]
                           [--days 4] [--repeat 1] [--no-gc] [--profile] [--against REV]

A deterministic event log (random.Random(seed)) of web/app/store/email/social sessions is generated
and parsed *before* any timing: parsing is the edge's cost and is reported on its own ("parse
events/s"). The log's products are `--skus` skus in small families (4 to 12 skus; family k is
chosen in proportion to 1 / (k + 1), a long tail); families 2j and 2j + 1 complement each other. Each
customer has a favourite family most sessions are about; a session's cart adds are mostly of its
family, some of the complement, a few of anything; fuller carts are bought more often; a till purchase
without an online cart is a small basket of one family and its complement. So baskets have
co-purchase structure and the affinity model has pairs to learn. Purchases carry `items` as
`[{"sku", "price", "quantity"}]`, except about one in seven (`NO_ITEMS`: the cart is the basket then).
Identified customers get a loyalty `tier` (bronze, silver, gold) now and then, for offers' eligibility.

Journeys: the shipped ones in journeys/ plus one defined here (`store-follow-up`, store_visit
triggered, exercising wait_until, if and split), with the shipped policy; the shipped offers.yaml is
replaced by `--offers` generated offers (bench/nba.py: varied eligibility, weighted scores, priorities,
caps, valid windows, instore/push/email with fallbacks, coupons, nine in ten tagged `store`, a few that
recommend), so web-to-store's `decide: {offers: {tags: [store]}}` weighs ~0.9 x `--offers` candidates
and post-purchase's `recommend` reads the model learned from the log's baskets. After a warm-up, it times

  (a) `Simulator.run` over the whole log: the engine plus an in-memory customer table, the timer
      heap and the products model, timers fired as the virtual clock passes them and the rest after
      the last event;
  (b) a bare `Engine.on_event` loop over the same log: no timers (so no post-purchase email) and no
      products model (an offer's recommendations come back empty);
  (c) next best action's cost, side by side: (A) is (a); (B), the baseline, is the same journeys with
      each `decide` step a plain send of one fixed offer-like template (same channel, a coupon) and no
      `recommend` on any send, through the same `Simulator.run` on the same log. A and B alternate, best
      of `--repeat` each (machines are noisy). The cost share is 1 - A/B: the share of engine throughput
      that decide and recommend (ranking, choosing, the model's folds and lookups) take; it is also
      given by process CPU time, which other load on the machine disturbs less. Printed with the
      decisions, offer sends and recommended items by source (affinity, popular), to show they ran.

It ends with two README rows, the engine's and next best action's. `--profile` runs (a) under cProfile instead and
prints the top 25 functions by tottime. `--against REV` times `orchestrator simulate` on the same log instead, this
tree against git revision REV side by side (bench/revision.py). This is a benchmark, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import gc
import io
import itertools
import platform
import pstats
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.machine import cpu_model
from bench.nba import baseline, generate_catalogue, nba_counts
from bench.revision import compare
from orchestrator.contract.events import Event, event_from_document
from orchestrator.contract.journeys import Journey
from orchestrator.contract.loader import load
from orchestrator.engine import CustomerState, Engine
from orchestrator.process import tune_gc
from orchestrator.simulate import Result, Simulator
from orchestrator.timefmt import format_ms, parse_rfc3339, to_ms

ROOT = Path(__file__).resolve().parent.parent
START = to_ms(parse_rfc3339("2026-03-02T00:00:00Z"))  # a Monday
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS

# A fifth journey, defined here: after a store visit, next morning at 10:00 local time (not on
# Sundays), a thank-you; customers with SMS consent are split between SMS and email.
STORE_FOLLOW_UP = {
    "id": "store-follow-up",
    "name": "Store visit follow-up",
    "priority": 20,
    "trigger": {"event": "store_visit", "where": {"event.properties.store_id": {"exists": True}}},
    "reentry": "7d",
    "exit_on": ["purchase"],
    "goal": {"event": "purchase", "within": "3d"},
    "holdout": "5%",
    "steps": [
        {"wait_until": {"time": "10:00", "days": ["mon", "tue", "wed", "thu", "fri", "sat"]}},
        {
            "if": {"profile.consent.sms": True},
            "then": [
                {
                    "split": [
                        {"weight": 1, "steps": [{"id": "thanks-sms", "send": {
                            "channel": "sms", "template": "store-thanks",
                            "data": {"store_id": "{{ entry.properties.store_id }}"}}}]},
                        {"weight": 1, "steps": [{"id": "thanks-email-a", "send": {
                            "channel": "email", "template": "store-thanks",
                            "data": {"store_id": "{{ entry.properties.store_id }}",
                                     "greeting": "Ciao {{ profile.traits.first_name }}"}}}]},
                    ]
                }
            ],
            "else": [
                {"id": "thanks-email", "send": {
                    "channel": "email", "template": "store-thanks", "fallback": ["push"],
                    "data": {"store_id": "{{ entry.properties.store_id }}",
                             "greeting": "Ciao {{ profile.traits.first_name }}"}}},
            ],
        },
    ],
}  # fmt: skip


# --------------------------------------------------------------------------------- event log


FIRST_NAMES = ("Anna", "Luca", "Giulia", "Marco", "Sara", "Paolo", "Elena", "Davide", "Chiara", "Matteo")
TIMEZONES = ("Europe/Rome",) * 6 + ("Europe/London", "Europe/Berlin", "America/New_York", "UTC")
TIERS, TIER_WEIGHTS = ("bronze", "silver", "gold"), (6, 3, 1)
SESSION_CHANNELS: tuple[str, ...] = ("web", "app", "email", "social", "store")
SESSION_WEIGHTS: tuple[int, ...] = (45, 30, 10, 7, 16)
PAGES = ("/", "/search", "/c/shoes", "/c/bags", "/c/sale", "/p", "/p", "/p", "/cart", "/account")
NO_ITEMS = 0.15  # purchases that leave `items` out: the cart is the basket

Product = tuple[str, float, str]  # sku, price, name


class _Products:
    """`skus` products in families of 4 to 12 (shoes of one line, the bags of one collection...), each family
    priced around its own level; family `f` and `f ^ 1` complement each other (shoes and their socks)."""

    def __init__(self, skus: int, rng: random.Random) -> None:
        self.families: list[list[Product]] = []
        number = 0
        while number < skus:
            level = rng.choice((8, 15, 30, 60, 120))
            size = min(rng.randint(4, 12), skus - number)
            self.families.append([(f"SKU-{number + k:05d}", round(level * rng.uniform(0.7, 1.5), 2),
                                   f"Item {number + k}") for k in range(size)])  # fmt: skip
            number += size
        self._numbers = range(len(self.families))
        self._cumulative = list(itertools.accumulate(1 / (k + 1) for k in self._numbers))

    def family(self, rng: random.Random) -> int:
        """A family, by popularity: family k is drawn in proportion to 1 / (k + 1) (Zipf), a long tail."""
        return rng.choices(self._numbers, cum_weights=self._cumulative)[0]

    def complement(self, family: int) -> int:
        return family ^ 1 if family ^ 1 < len(self.families) else family

    def pick(self, rng: random.Random, family: int) -> Product:
        """One of the family's products, its first ones more often."""
        members = self.families[family]
        return members[int(len(members) * rng.random() ** 1.5)]

    def around(self, rng: random.Random, family: int) -> Product:
        """What a shopper looking at `family` adds: mostly that family, some of its complement, a few of anything."""
        r = rng.random()
        if r < 0.65:
            return self.pick(rng, family)
        if r < 0.85:
            return self.pick(rng, self.complement(family))
        return self.pick(rng, self.family(rng))


class _Customer:
    __slots__ = ("anon", "cart", "consent", "favourite", "id", "identified")

    def __init__(self, number: int) -> None:
        self.id = f"c-{number:06d}"
        self.anon = f"a-{number:06d}"
        self.identified = False
        self.consent: set[str] = set()
        self.cart: dict[str, tuple[float, int]] = {}  # sku -> (price, quantity)
        self.favourite = -1  # the product family most of the customer's sessions are about (-1: not yet drawn)


def _items(cart: dict[str, tuple[float, int]]) -> list[dict[str, Any]]:
    return [{"sku": sku, "price": price, "quantity": quantity} for sku, (price, quantity) in sorted(cart.items())]


def _value(cart: dict[str, tuple[float, int]]) -> float:
    return round(sum(price * quantity for price, quantity in cart.values()), 2)


def generate_log(customers: int, events: int, seed: int, days: int, skus: int = 10_000) -> list[dict[str, Any]]:
    """`events` event documents for `customers` customers over `days` days, sorted by time."""
    rng = random.Random(seed)
    products = _Products(skus, rng)
    people = [_Customer(i) for i in range(customers)]
    out: list[tuple[int, dict[str, Any]]] = []
    seq = 0

    def hour_of_day() -> float:  # busier in the day and evening, a trickle at night
        return (
            rng.choices(range(24), weights=(1, 1, 1, 1, 1, 2, 3, 5, 7, 8, 8, 8, 9, 9, 8, 8, 8, 9, 10, 10, 9, 7, 4, 2))[
                0
            ]
            + rng.random()
        )

    def emit(ts: int, who: _Customer, kind: str, channel: str, props: dict[str, Any], anonymous: bool = False) -> None:
        nonlocal seq
        seq += 1
        doc: dict[str, Any] = {
            "event_id": f"e-{seed}-{seq:08d}",
            "type": kind,
            "occurred_at": format_ms(ts),
            "channel": channel,
            "properties": props,
        }
        if anonymous:
            doc["anonymous_id"] = who.anon
        else:
            doc["customer_id"] = who.id
        out.append((ts, doc))
        if rng.random() < 0.003:  # an at-least-once redelivery: same event id, a little later
            out.append((ts + rng.randrange(1, 5000), doc))

    def purchase(ts: int, who: _Customer, channel: str, basket: dict[str, tuple[float, int]],
                 extra: dict[str, Any]) -> None:  # fmt: skip
        props: dict[str, Any] = {"order_id": f"o-{seq}", "value": _value(basket) or round(rng.uniform(10, 300), 2)}
        if basket and rng.random() >= NO_ITEMS:
            props["items"] = _items(basket)
        emit(ts, who, "purchase", channel, {**props, **extra})

    while len(out) < events:
        who = people[min(int(customers * rng.random() ** 1.3), customers - 1)]  # a few customers are busier
        ts = START + rng.randrange(days) * DAY_MS + int(hour_of_day() * HOUR_MS)
        channel = rng.choices(SESSION_CHANNELS, SESSION_WEIGHTS)[0]
        if who.favourite < 0:
            who.favourite = products.family(rng)
        family = who.favourite if rng.random() < 0.6 else products.family(rng)  # what this session is about

        def step() -> int:
            nonlocal ts
            ts += rng.randrange(3_000, 180_000)
            return ts

        if channel == "store":
            store = f"S-{rng.randrange(40):02d}"
            emit(step(), who, "store_visit", "store", {"store_id": store})
            if rng.random() < 0.35:
                basket = who.cart
                if not basket:  # bought at the till: a small basket of one family and its complement
                    basket = {}
                    for _ in range(1 + min(int(rng.expovariate(1 / 1.5)), 5)):
                        near = family if rng.random() < 0.7 else products.complement(family)
                        sku, price, _ = products.pick(rng, near)
                        basket[sku] = (price, 1)
                purchase(step(), who, "store", basket, {"store_id": store})
                who.cart = {}
            continue

        anonymous = not who.identified and rng.random() < 0.3
        if not who.identified and not anonymous and rng.random() < 0.35:
            who.identified = True
            traits: dict[str, Any] = {"first_name": rng.choice(FIRST_NAMES), "timezone": rng.choice(TIMEZONES)}
            if rng.random() < 0.6:
                traits["tier"] = rng.choices(TIERS, TIER_WEIGHTS)[0]
            emit(step(), who, "identify", "web" if channel != "app" else "app", traits)
            if rng.random() < 0.6:
                for ch in ("email", "push", "sms"):
                    if rng.random() < (0.8 if ch == "email" else 0.4):
                        who.consent.add(ch)
                        emit(step(), who, "consent_update", channel if channel != "store" else "web",
                             {"channel": ch, "granted": True})  # fmt: skip
        elif who.identified and rng.random() < 0.04:
            ch = rng.choice(("email", "push", "sms"))
            granted = ch not in who.consent
            (who.consent.add if granted else who.consent.discard)(ch)
            emit(
                step(), who, "consent_update", "email" if ch == "email" else "app", {"channel": ch, "granted": granted}
            )

        site = "app" if channel == "app" else "web"
        landing = channel  # email / social click-throughs land with their own channel
        for i in range(1 + min(int(rng.expovariate(1 / 2.5)), 15)):
            emit(step(), who, "page_view", landing if i == 0 else site, {"path": rng.choice(PAGES)}, anonymous)
            r = rng.random()
            if r < 0.22:
                sku, price, name = products.around(rng, family)
                quantity = 1 + (rng.random() < 0.1)
                who.cart[sku] = (price, who.cart[sku][1] + quantity if sku in who.cart else quantity)
                emit(step(), who, "cart_add", site, {"sku": sku, "price": price, "quantity": quantity, "name": name},
                     anonymous)  # fmt: skip
            elif r < 0.34 and who.cart:
                sku = rng.choice(list(who.cart))
                del who.cart[sku]
                emit(step(), who, "cart_remove", site, {"sku": sku}, anonymous)
        if who.cart and not anonymous and rng.random() < min(0.08 * len(who.cart), 0.3):  # fuller carts sell more
            purchase(step(), who, site, who.cart, {})
            who.cart = {}

    del out[events:]  # the last session may overshoot
    out.sort(key=lambda pair: pair[0])  # stable
    return [doc for _, doc in out]


# --------------------------------------------------------------------------------- harness


SECRET = b"bench-secret"


def build_engines(offers: int, seed: int) -> tuple[Engine, Engine]:
    """(A) the shipped journeys with `offers` generated offers instead of offers.yaml's, and (B) the baseline:
    the same journeys, each decide a plain send, no recommend (bench/nba.py)."""
    loaded = load([ROOT / "journeys"])
    if not loaded.ok:
        sys.exit("journeys/ does not load:\n" + "\n".join(map(str, loaded.problems)))
    catalogue = generate_catalogue(offers, seed, START)
    journeys = [*loaded.journeys, Journey.model_validate(STORE_FOLLOW_UP)]
    nba = Engine(journeys, loaded.policy, catalogue=catalogue, secret=SECRET)
    plain = Engine(baseline(journeys, catalogue), loaded.policy, catalogue=catalogue, secret=SECRET)
    return nba, plain


def run_simulator(engine: Engine, events: list[Event]) -> tuple[float, Result]:
    simulator = Simulator(engine)
    t0 = time.perf_counter()
    result = simulator.run(events)  # until=None: after the last event, every timer left fires
    return time.perf_counter() - t0, result


def summary(result: Result) -> dict[str, Any]:
    """The figures kept of a timed run (the run itself is dropped, so no run pays for another's garbage)."""
    return {
        "timers": result.timers_fired, "actions": len(result.actions), "audit": len(result.audit),
        "duplicates": result.duplicates, "customers": len(result.states),
        "kinds": Counter(record["kind"] for record in result.audit), **nba_counts(result),
    }  # fmt: skip


def run_on_event(engine: Engine, events: list[Event]) -> tuple[float, int]:
    states: dict[str, CustomerState] = {}
    on_event = engine.on_event
    actions = 0
    t0 = time.perf_counter()
    for event in events:
        key = event.customer
        state = states.get(key)
        if state is None:
            state = states[key] = CustomerState(key)
        actions += len(on_event(state, event, event.ts).actions)
    return time.perf_counter() - t0, actions


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.engine", description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--skus", type=int, default=10_000, help="products in the log's catalogue (default 10000)")
    parser.add_argument("--offers", type=int, default=50, help="generated offers replacing offers.yaml (default 50)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--days", type=int, default=4, help="span of the log (default 4)")
    parser.add_argument("--warmup", type=int, default=20_000, help="events in the warm-up run (default 20000)")
    parser.add_argument("--repeat", type=int, default=1, help="timed runs of each kind; the best is reported")
    parser.add_argument("--no-gc", action="store_true", help="disable the cyclic GC while timing (shows its share)")
    parser.add_argument("--profile", action="store_true", help="cProfile the Simulator run, print top 25 by tottime")
    parser.add_argument("--against", metavar="REV", help="time `orchestrator simulate` on the log, this tree against "
                        "git revision REV side by side (bench/revision.py), and stop")  # fmt: skip
    args = parser.parse_args(argv)

    engine, plain = build_engines(args.offers, args.seed)
    python = platform.python_version()
    cpu = cpu_model()
    today = dt.date.today().isoformat()
    print(f"# engine bench  {today}  Python {python} ({platform.python_implementation()})  CPU: {cpu}")
    gc_note = "cyclic GC off while timing" if args.no_gc else "cyclic GC on"
    print(f"best of {args.repeat} timed run(s), {gc_note}")
    print(f"journeys: {', '.join(engine.order)}")
    store = sum(1 for offer in engine.offers.values() if "store" in offer.spec.tags)
    print(f"offers: {len(engine.offers)} generated (seed {args.seed}), {store} tagged store; skus: {args.skus:,}")

    t0 = time.perf_counter()
    docs = generate_log(args.customers, args.events, args.seed, args.days, args.skus)
    gen_s = time.perf_counter() - t0
    mix = Counter(doc["type"] for doc in docs)
    channels = Counter(doc["channel"] for doc in docs)
    keys = len({doc.get("customer_id") or "anon:" + doc["anonymous_id"] for doc in docs})
    span_h = (to_ms(parse_rfc3339(docs[-1]["occurred_at"])) - to_ms(parse_rfc3339(docs[0]["occurred_at"]))) / HOUR_MS
    purchases = [doc["properties"] for doc in docs if doc["type"] == "purchase"]
    with_items = [len(props["items"]) for props in purchases if "items" in props]
    print(f"log: {len(docs):,} events, {keys:,} customer keys, {span_h:.0f} h, generated in {gen_s:.1f} s")
    print("  types:    " + ", ".join(f"{k} {v / len(docs):.1%}" for k, v in mix.most_common()))
    print("  channels: " + ", ".join(f"{k} {v / len(docs):.1%}" for k, v in channels.most_common()))
    print(f"  purchases: {len(purchases):,}, {len(with_items) / max(len(purchases), 1):.0%} with items "
          f"({sum(with_items) / max(len(with_items), 1):.1f} skus on average), the others' basket is the cart")

    if args.against:
        compare(docs, args.against, args.repeat)
        return

    t0 = time.perf_counter()
    events = [event_from_document(doc) for doc in docs]
    parse_s = time.perf_counter() - t0
    parse_rate = len(events) / parse_s
    print(f"parse (event_from_document: the quick reading, pydantic for the unusual): {parse_rate:,.0f} events/s "
          f"({parse_s:.2f} s)")  # fmt: skip
    del docs, purchases

    # The parsed log is the bench's input, not the engine's garbage: keep the cyclic GC from
    # rescanning half a million events on every collection (a streaming worker never holds them).
    gc.collect()
    gc.freeze()
    tune_gc()  # as `orchestrator simulate` and the worker run

    for warm in (engine, plain):  # warm-up: imports, caches (zoneinfo), allocator
        run_simulator(warm, events[: args.warmup])
    run_on_event(engine, events[: args.warmup])

    if args.no_gc:
        gc.disable()
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        result = Simulator(engine).run(events)
        profiler.disable()
        stream = io.StringIO()
        pstats.Stats(profiler, stream=stream).strip_dirs().sort_stats("tottime").print_stats(25)
        print(f"\nprofile of Simulator.run: {result.events:,} events, {result.timers_fired:,} timers fired")
        print(stream.getvalue())
        return

    n = len(events)
    best: dict[str, tuple[float, dict[str, Any]]] = {}
    cpu_s: dict[str, float] = {}  # the best process CPU time of each: less sensitive to other load on the machine
    for round_ in range(args.repeat):  # A and B alternate, each round in the other order
        for name, which in (("A", engine), ("B", plain))[:: 1 if round_ % 2 == 0 else -1]:
            cpu_start = time.process_time()
            seconds, result = run_simulator(which, events)
            cpu_s[name] = min(cpu_s.get(name, float("inf")), time.process_time() - cpu_start)
            if name not in best or seconds < best[name][0]:
                best[name] = seconds, summary(result)
            del result  # keep only figures between runs, so no run pays for another's garbage
            gc.collect()
    sim_s, stats = best["A"]
    base_s, base = best["B"]
    sim_rate, base_rate = n / sim_s, n / base_s
    timers_fired, actions = stats["timers"], stats["actions"]
    print(f"\n(a) Simulator.run (engine + timers): {sim_rate:,.0f} events/s, {sim_s * 1e6 / n:.1f} µs/event "
          f"({sim_s:.2f} s)")  # fmt: skip
    print(
        f"    timers fired {timers_fired:,}, actions {actions:,}, audit records {stats['audit']:,}, "
        f"duplicates {stats['duplicates']:,}, customer keys {stats['customers']:,}"
    )
    print("    audit: " + ", ".join(f"{k} {v:,}" for k, v in stats["kinds"].most_common()))

    raw_s, raw_actions = min((run_on_event(engine, events) for _ in range(args.repeat)), key=lambda pair: pair[0])
    raw_rate = n / raw_s
    print(f"(b) on_event loop (no timers):      {raw_rate:,.0f} events/s, {raw_s * 1e6 / n:.1f} µs/event "
          f"({raw_s:.2f} s), actions {raw_actions:,}")  # fmt: skip

    share = 1 - sim_rate / base_rate
    sources = stats["sources"]
    recommended = sum(sources.values())
    affinity = sources["affinity"] / recommended if recommended else 0.0
    print(f"(c) next best action, Simulator.run side by side ({args.offers} offers, {args.skus:,} skus):")
    print(f"    A  decide + recommend:               {sim_rate:,.0f} events/s, {sim_s * 1e6 / n:.1f} µs/event")
    print(f"    B  plain sends, no recommend:        {base_rate:,.0f} events/s, {base_s * 1e6 / n:.1f} µs/event")
    print(f"    cost share 1 - A/B: {share:.1%} of engine throughput (the bar: at most 25%); by process CPU time "
          f"A {cpu_s['A']:.2f} s, B {cpu_s['B']:.2f} s: {1 - cpu_s['B'] / cpu_s['A']:.1%}")  # fmt: skip
    print(f"    A: decided {stats['decided']:,} (with a pick {stats['picked']:,}, explored {stats['explored']:,}; "
          f"{stats['candidates']:.1f} candidates, {stats['eligible']:.1f} eligible on average), "
          f"offer sends {stats['offer_sends']:,} ({stats['offers_sent']} offers)")  # fmt: skip
    print(f"       recommended items {recommended:,} in {stats['recommending']:,} sends: "
          + ", ".join(f"{k} {v:,}" for k, v in sources.most_common()) + f" (affinity {affinity:.0%})")
    print(f"    B: baseline sends {base['baseline_sends']:,}, recommended items {sum(base['sources'].values()):,}, "
          f"actions {base['actions']:,}, timers fired {base['timers']:,}")  # fmt: skip

    print("\nREADME rows:\n")
    print(
        "| date | Python | CPU | customers | events | parse ev/s | engine ev/s (Simulator.run) | µs/event "
        "| on_event ev/s (no timers) | timers fired | actions |"
    )
    print("|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|")
    shown_python = f"{python}, GC off" if args.no_gc else python
    print(f"| {today} | {shown_python} | {cpu} | {args.customers:,} | {n:,} | {parse_rate:,.0f} | {sim_rate:,.0f} "
          f"| {sim_s * 1e6 / n:.1f} | {raw_rate:,.0f} | {timers_fired:,} "
          f"| {actions:,} |")  # fmt: skip
    print()
    print(
        "| date | Python | CPU | events | offers | skus | decide + recommend ev/s (A) | plain sends ev/s (B) "
        "| cost 1 - A/B | decided | offer sends | recommended items (affinity) |"
    )
    print("|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    print(f"| {today} | {shown_python} | {cpu} | {n:,} | {args.offers} | {args.skus:,} | {sim_rate:,.0f} "
          f"| {base_rate:,.0f} | {share:.1%} | {stats['decided']:,} | {stats['offer_sends']:,} "
          f"| {recommended:,} ({affinity:.0%}) |")  # fmt: skip


if __name__ == "__main__":
    main()
