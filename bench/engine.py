"""Micro-benchmark of the pure engine: events per second on one core.

    python -m bench.engine [--customers 100000] [--events 500000] [--seed 7] [--days 4] [--profile]

A deterministic event log (random.Random(seed)) of web/app/store/email/social sessions is generated
and parsed *before* any timing: parsing is the edge's cost and is reported on its own ("parse
events/s"). Then, after a warm-up, it times

  (a) `Simulator.run` over the whole log: the engine plus an in-memory customer table and the timer
      heap, timers fired as the virtual clock passes them and the rest after the last event;
  (b) a bare `Engine.on_event` loop over the same log, no timers.

Journeys: the shipped ones in journeys/ plus one defined here (`store-follow-up`, store_visit
triggered, exercising wait_until, if and split). `--profile` runs (a) under cProfile instead and
prints the top 25 functions by tottime. This is a benchmark, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import gc
import io
import platform
import pstats
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.machine import cpu_model
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
SESSION_CHANNELS: tuple[str, ...] = ("web", "app", "email", "social", "store")
SESSION_WEIGHTS: tuple[int, ...] = (45, 30, 10, 7, 16)
PAGES = ("/", "/search", "/c/shoes", "/c/bags", "/c/sale", "/p", "/p", "/p", "/cart", "/account")


class _Customer:
    __slots__ = ("anon", "cart", "consent", "id", "identified")

    def __init__(self, number: int) -> None:
        self.id = f"c-{number:06d}"
        self.anon = f"a-{number:06d}"
        self.identified = False
        self.consent: set[str] = set()
        self.cart: dict[str, tuple[float, str]] = {}


def generate_log(customers: int, events: int, seed: int, days: int) -> list[dict[str, Any]]:
    """`events` event documents for `customers` customers over `days` days, sorted by time."""
    rng = random.Random(seed)
    catalog = [(f"SKU-{i:04d}", round(rng.uniform(5, 250), 2), f"Item {i}") for i in range(2000)]
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

    while len(out) < events:
        who = people[min(int(customers * rng.random() ** 1.3), customers - 1)]  # a few customers are busier
        ts = START + rng.randrange(days) * DAY_MS + int(hour_of_day() * HOUR_MS)
        channel = rng.choices(SESSION_CHANNELS, SESSION_WEIGHTS)[0]

        def step() -> int:
            nonlocal ts
            ts += rng.randrange(3_000, 180_000)
            return ts

        if channel == "store":
            store = f"S-{rng.randrange(40):02d}"
            emit(step(), who, "store_visit", "store", {"store_id": store})
            if rng.random() < 0.35:
                value = round(sum(p for p, _ in who.cart.values()) or rng.uniform(10, 300), 2)
                emit(step(), who, "purchase", "store", {"order_id": f"o-{seq}", "value": value, "store_id": store})
                who.cart.clear()
            continue

        anonymous = not who.identified and rng.random() < 0.3
        if not who.identified and not anonymous and rng.random() < 0.35:
            who.identified = True
            emit(step(), who, "identify", "web" if channel != "app" else "app",
                 {"first_name": rng.choice(FIRST_NAMES), "timezone": rng.choice(TIMEZONES)})  # fmt: skip
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
                sku, price, name = rng.choice(catalog)
                who.cart[sku] = (price, name)
                emit(step(), who, "cart_add", site, {"sku": sku, "price": price, "quantity": 1 + (rng.random() < 0.1),
                                                     "name": name}, anonymous)  # fmt: skip
            elif r < 0.34 and who.cart:
                sku = rng.choice(list(who.cart))
                del who.cart[sku]
                emit(step(), who, "cart_remove", site, {"sku": sku}, anonymous)
        if who.cart and not anonymous and rng.random() < 0.15:
            value = round(sum(p for p, _ in who.cart.values()), 2)
            emit(step(), who, "purchase", site, {"order_id": f"o-{seq}", "value": value,
                                                 "items": sorted(who.cart)})  # fmt: skip
            who.cart.clear()

    del out[events:]  # the last session may overshoot
    out.sort(key=lambda pair: pair[0])  # stable
    return [doc for _, doc in out]


# --------------------------------------------------------------------------------- harness


def build_engine() -> Engine:
    loaded = load([ROOT / "journeys"])
    if not loaded.ok:
        sys.exit("journeys/ does not load:\n" + "\n".join(map(str, loaded.problems)))
    journeys = [*loaded.journeys, Journey.model_validate(STORE_FOLLOW_UP)]
    return Engine(journeys, loaded.policy, secret=b"bench-secret")


def run_simulator(engine: Engine, events: list[Event]) -> tuple[float, Result]:
    simulator = Simulator(engine)
    t0 = time.perf_counter()
    result = simulator.run(events)  # until=None: after the last event, every timer left fires
    return time.perf_counter() - t0, result


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
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--days", type=int, default=4, help="span of the log (default 4)")
    parser.add_argument("--warmup", type=int, default=20_000, help="events in the warm-up run (default 20000)")
    parser.add_argument("--repeat", type=int, default=1, help="timed runs of each kind; the best is reported")
    parser.add_argument("--no-gc", action="store_true", help="disable the cyclic GC while timing (shows its share)")
    parser.add_argument("--profile", action="store_true", help="cProfile the Simulator run, print top 25 by tottime")
    args = parser.parse_args(argv)

    engine = build_engine()
    python = platform.python_version()
    cpu = cpu_model()
    today = dt.date.today().isoformat()
    print(f"# engine bench  {today}  Python {python} ({platform.python_implementation()})  CPU: {cpu}")
    gc_note = "cyclic GC off while timing" if args.no_gc else "cyclic GC on"
    print(f"best of {args.repeat} timed run(s), {gc_note}")
    print(f"journeys: {', '.join(engine.order)}")

    t0 = time.perf_counter()
    docs = generate_log(args.customers, args.events, args.seed, args.days)
    gen_s = time.perf_counter() - t0
    mix = Counter(doc["type"] for doc in docs)
    channels = Counter(doc["channel"] for doc in docs)
    keys = len({doc.get("customer_id") or "anon:" + doc["anonymous_id"] for doc in docs})
    span_h = (to_ms(parse_rfc3339(docs[-1]["occurred_at"])) - to_ms(parse_rfc3339(docs[0]["occurred_at"]))) / HOUR_MS
    print(f"log: {len(docs):,} events, {keys:,} customer keys, {span_h:.0f} h, generated in {gen_s:.1f} s")
    print("  types:    " + ", ".join(f"{k} {v / len(docs):.1%}" for k, v in mix.most_common()))
    print("  channels: " + ", ".join(f"{k} {v / len(docs):.1%}" for k, v in channels.most_common()))

    t0 = time.perf_counter()
    events = [event_from_document(doc) for doc in docs]
    parse_s = time.perf_counter() - t0
    parse_rate = len(events) / parse_s
    print(f"parse (event_from_document, pydantic): {parse_rate:,.0f} events/s ({parse_s:.2f} s)")
    del docs

    # The parsed log is the bench's input, not the engine's garbage: keep the cyclic GC from
    # rescanning half a million events on every collection (a streaming worker never holds them).
    gc.collect()
    gc.freeze()
    tune_gc()  # as `orchestrator simulate` and the worker run

    run_simulator(engine, events[: args.warmup])  # warm-up: imports, caches (zoneinfo), allocator
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
    best: tuple[float, dict[str, Any]] | None = None
    for _ in range(args.repeat):  # keep only figures between runs, so no run pays for another's garbage
        seconds, result = run_simulator(engine, events)
        if best is None or seconds < best[0]:
            best = seconds, {
                "timers": result.timers_fired, "actions": len(result.actions), "audit": len(result.audit),
                "duplicates": result.duplicates, "customers": len(result.states),
                "kinds": Counter(record["kind"] for record in result.audit),
            }  # fmt: skip
        del result
        gc.collect()
    assert best is not None
    sim_s, stats = best
    sim_rate = n / sim_s
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

    print("\nREADME row:\n")
    print(
        "| date | Python | CPU | customers | events | parse ev/s | engine ev/s (Simulator.run) | µs/event "
        "| on_event ev/s (no timers) | timers fired | actions |"
    )
    print("|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|")
    shown_python = f"{python}, GC off" if args.no_gc else python
    print(f"| {today} | {shown_python} | {cpu} | {args.customers:,} | {n:,} | {parse_rate:,.0f} | {sim_rate:,.0f} "
          f"| {sim_s * 1e6 / n:.1f} | {raw_rate:,.0f} | {timers_fired:,} "
          f"| {actions:,} |")  # fmt: skip


if __name__ == "__main__":
    main()
