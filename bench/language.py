"""What the second edition of the journey language costs when journeys use it: the engine, side by side.

    python -m bench.language [--customers 100000] [--events 500000] [--seed 7] [--repeat 3]

The log is bench.engine's (generated and parsed before timing). (B) is bench.engine's engine without next best
action's generated catalogue: the shipped journeys, offers and policy plus `store-follow-up`. (A) adds, on the
same log, journeys that use the second edition, and the policy rules:

- `win-back`: `inactive_for: 2d` (where the customer bought before), so every event re-arms a timer;
- `vip`: `becomes: {profile.lifetime_value: {gte: 300}}`, evaluated before and after every event;
- `hot-browser`: page views counted over time (`profile.recent.page_view.1d >= 5`), `max_sends` and a weekday
  `send_window`, a templated template name with `default`;
- `birthday`: `wait_until` on an anniversary of a trait;
- `receipt`: a transactional journey on every purchase (consent still applies);
- the policy gains `max_active_journeys: 3`, `spacing: 2h` and a 5 % `global_holdout`.

A and B alternate, best of `--repeat` each; the cost is 1 - A/B, also by process CPU time. It prints the
second-edition records that show the rules ran (not_entered by reason, suppressions by reason, deferrals) and a
README row. A benchmark, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import platform
import sys
import time
from collections import Counter
from typing import Any

import yaml

from bench.engine import ROOT, SECRET, STORE_FOLLOW_UP, generate_log, run_simulator
from bench.machine import cpu_model
from orchestrator.contract.events import event_from_document
from orchestrator.contract.journeys import Journey, Policy
from orchestrator.contract.loader import load
from orchestrator.engine import Engine
from orchestrator.process import tune_gc

SECOND_EDITION = """
- id: win-back
  trigger: {inactive_for: 2d, where: {profile.orders: {gte: 1}}}
  reentry: always
  steps: [{send: {channel: email, template: miss-you, fallback: [push]}}]
- id: vip
  priority: 60
  trigger: {becomes: {profile.lifetime_value: {gte: 300}}}
  steps: [{send: {channel: email, template: "vip-{{ profile.traits.tier | default: 'new' }}"}}]
- id: hot-browser
  trigger: {event: page_view, where: {profile.recent.page_view.1d: {gte: 5}}}
  reentry: always
  max_sends: {max: 1, within: 2d}
  send_window: {start: "09:00", end: "20:00", days: [mon, tue, wed, thu, fri]}
  steps: [{send: {channel: push, template: still-looking, fallback: [email]}}]
- id: birthday
  trigger: {event: identify, where: {event.properties.birthday: {exists: true}}}
  steps:
    - wait_until: {anniversary: profile.traits.birthday, time: "10:00", offset: -7d}
    - send: {channel: email, template: birthday}
- id: receipt
  category: transactional
  trigger: {event: purchase}
  reentry: always
  steps: [{send: {channel: email, template: receipt}}]
"""
POLICY_RULES = {"max_active_journeys": 3, "spacing": {"min": "2h"}, "global_holdout": "5%"}
SHOWN = ("not_entered", "suppressed", "deferred")


def build() -> tuple[Engine, Engine]:
    loaded = load([ROOT / "journeys"])
    if not loaded.ok:
        sys.exit("journeys/ does not load:\n" + "\n".join(map(str, loaded.problems)))
    base = [*loaded.journeys, Journey.model_validate(STORE_FOLLOW_UP)]
    added = [Journey.model_validate(doc) for doc in yaml.safe_load(SECOND_EDITION)]
    policy = Policy.model_validate({**loaded.policy.model_dump(), **POLICY_RULES})
    language = Engine([*base, *added], policy, catalogue=loaded.catalogue, secret=SECRET)
    plain = Engine(base, loaded.policy, catalogue=loaded.catalogue, secret=SECRET)
    return language, plain


def with_birthdays(docs: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """One identify in five carries a birthday (so `birthday` has entrants), the same in A and B."""
    for n, doc in enumerate(docs):
        if doc["type"] == "identify" and (n + seed) % 5 == 0:
            doc["properties"]["birthday"] = f"19{70 + n % 30}-{1 + n % 12:02d}-{1 + n % 28:02d}"
    return docs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.language", description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--days", type=int, default=4)
    parser.add_argument("--skus", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    language, plain = build()
    python, cpu, today = platform.python_version(), cpu_model(), dt.date.today().isoformat()
    print(f"# language bench  {today}  Python {python}  CPU: {cpu}")
    print(f"A: {', '.join(language.order)}\nB: {', '.join(plain.order)}")
    docs = with_birthdays(generate_log(args.customers, args.events, args.seed, args.days, args.skus), args.seed)
    events = [event_from_document(doc) for doc in docs]
    del docs
    gc.collect()
    gc.freeze()
    tune_gc()
    for warm in (language, plain):
        run_simulator(warm, events[:20_000])

    n = len(events)
    best: dict[str, tuple[float, Counter[str], int]] = {}
    cpu_s: dict[str, float] = {}
    for round_ in range(args.repeat):
        for name, engine in (("A", language), ("B", plain))[:: 1 if round_ % 2 == 0 else -1]:
            cpu_start = time.process_time()
            seconds, result = run_simulator(engine, events)
            cpu_s[name] = min(cpu_s.get(name, float("inf")), time.process_time() - cpu_start)
            if name not in best or seconds < best[name][0]:
                kinds = Counter(f"{r['kind']}:{r.get('reason')}" for r in result.audit if r["kind"] in SHOWN)
                kinds.update(f"action:{a['journey']}" for a in result.actions)
                best[name] = seconds, kinds, len(result.actions)
            del result
            gc.collect()
    a_s, kinds, a_actions = best["A"]
    b_s, _, b_actions = best["B"]
    share, cpu_share = 1 - b_s / a_s, 1 - cpu_s["B"] / cpu_s["A"]
    print(f"A  second edition in use: {n / a_s:,.0f} events/s, {a_s * 1e6 / n:.1f} µs/event, {a_actions:,} actions")
    print(f"B  shipped journeys:      {n / b_s:,.0f} events/s, {b_s * 1e6 / n:.1f} µs/event, {b_actions:,} actions")
    print(f"cost 1 - A/B: {share:.1%} of engine throughput; by process CPU time {cpu_share:.1%}")
    print("A's records: " + ", ".join(f"{k} {v:,}" for k, v in sorted(kinds.items())))
    print("\n| date | Python | CPU | events | second edition ev/s (A) | shipped ev/s (B) | cost 1 - A/B | CPU cost |")
    print("|---|---|---|--:|--:|--:|--:|--:|")
    print(f"| {today} | {python} | {cpu} | {n:,} | {n / a_s:,.0f} | {n / b_s:,.0f} | {share:.1%} | {cpu_share:.1%} |")


if __name__ == "__main__":
    main()
