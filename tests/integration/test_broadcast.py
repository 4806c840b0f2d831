"""Scheduled broadcasts on the real broker: a recurring local-time broadcast to a segment publishes exactly the
actions `simulate` prints, also when the worker is SIGKILLed in the middle of the log's occurrences and restarted
(state on RocksDB): no member skipped, none entered twice."""

from __future__ import annotations

import shutil
import signal
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from orchestrator.contract.events import event_from_document
from orchestrator.contract.loader import load
from orchestrator.engine import Engine
from orchestrator.engine.history import order_of
from orchestrator.settings import DEV_COUPON_SECRET
from orchestrator.simulate import Simulator
from orchestrator.timefmt import parse_rfc3339, to_ms
from tests.integration.conftest import Stack, at
from tests.integration.oracle import by_id, expected_actions, oracle

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]
CHANNELS = ["email", "push"]
PEOPLE = 150


def journeys(folder: Path) -> Path:
    """Daily at 10:00 local on the three days before today, to the buyers of that moment, spread over 20 minutes;
    a push 30 minutes after each entry."""
    today = datetime.now(UTC).date()
    folder.mkdir()
    (folder / "segments.yaml").write_text("segments:\n  buyers: {profile.orders: {gte: 1}}\n")
    (folder / "policy.yaml").write_text("consent_required: []\ndefault_timezone: Europe/Rome\n")
    (folder / "digest.yaml").write_text(f"""id: digest
trigger:
  schedule: {{time: "10:00", from: "{today - timedelta(days=3)}", until: "{today - timedelta(days=1)}"}}
  audience: buyers
  spread: 20m
reentry: always
steps:
  - send: {{channel: email, template: digest, data: {{orders: "{{{{ profile.orders }}}}"}}}}
  - wait: 30m
  - send: {{channel: push, template: digest-nudge}}
""")
    return folder


def history() -> list[dict[str, Any]]:
    """Four days of customers (Rome and New York) who become buyers on different days, some never."""
    start = -4 * 86_400
    events: list[dict[str, Any]] = []
    for n in range(PEOPLE):
        customer = f"c-{n:03d}"
        zone = "Europe/Rome" if n % 2 else "America/New_York"
        events.append({"event_id": f"i{n}", "type": "identify", "occurred_at": at(start + 60 * n),
                       "channel": "web", "customer_id": customer, "properties": {"timezone": zone}})  # fmt: skip
        if n % 5:
            bought = start + 86_400 * (n % 4) + 3_600 * (n % 13)
            events.append({"event_id": f"p{n}", "type": "purchase", "occurred_at": at(bought), "channel": "app",
                           "customer_id": customer, "properties": {"order_id": f"o{n}", "value": 20}})  # fmt: skip
    events.append({"event_id": "end", "type": "page_view", "occurred_at": at(-60), "channel": "web",
                   "customer_id": "c-000", "properties": {}})  # fmt: skip
    return sorted(events, key=lambda e: (e["occurred_at"], e["event_id"]))


def test_a_recurring_local_time_broadcast_survives_a_sigkill_mid_occurrence(stack: Stack, tmp_path: Path) -> None:
    stack.env["ORCH_STORE"] = "rocksdb://"
    folder = journeys(tmp_path / "journeys")
    events = history()
    expected = expected_actions(folder, events)
    entries = Counter(a["at"][:10] for a in expected if a["template"] == "digest")
    assert len(entries) == 3 and min(entries.values()) > 30, entries  # three occurrences, each of many members
    worker = stack.start_worker(journeys=folder)
    stack.produce(events)
    seen: list[dict[str, Any]] = []
    watcher = threading.Thread(target=lambda: seen.extend(stack.actions(CHANNELS, until=len(expected) // 3,
                                                                          timeout=120, settle=0)))  # fmt: skip
    watcher.start()
    watcher.join()
    assert len(seen) >= len(expected) // 3, len(seen)
    stack.stop(worker, signal.SIGKILL)  # a third of the entries published: in the middle of the occurrences
    assert len(seen) < len(expected), "the worker finished before it was killed: nothing was tested"
    time.sleep(2)
    stack.start_worker(journeys=folder)
    got = stack.actions(CHANNELS, until=len(expected), timeout=180)
    assert Counter(a["action_id"] for a in got) == Counter(a["action_id"] for a in expected)  # none lost, none twice
    assert by_id(got) == by_id(expected)
    # One `broadcast` record per occurrence and partition, once across the crash; together simulate's figures.
    wanted = {r["occurrence"]: r for r in oracle(folder, events).audit if r["kind"] == "broadcast"}
    deadline, written = time.monotonic() + 60, list[dict[str, Any]]()
    while time.monotonic() < deadline:
        written = [r for r in stack.consume([stack.env["ORCH_TOPIC_AUDIT"]], until=10**9, timeout=5, settle=0)
                   if r["kind"] == "broadcast"]  # fmt: skip
        if {r["occurrence"] for r in written} == set(wanted):
            break
    assert max(Counter((r["occurrence"], r["partition"]) for r in written).values()) == 1
    for occurrence, simulated in wanted.items():
        parts = [r for r in written if r["occurrence"] == occurrence]
        for figure in ("audience", "entered", "held_out"):
            assert sum(r[figure] for r in parts) == simulated[figure], (occurrence, figure)


def test_a_scheduled_journey_deployed_later_reaches_customers_who_stay_silent(stack: Stack, tmp_path: Path) -> None:
    """Customers stored before a scheduled journey is deployed, with no event after it, are visited by the worker's
    sweep and planned as of the deploy: the actions equal `simulate --deploy` at the time the archive records."""
    stack.env["ORCH_STORE"] = "rocksdb://"
    first = tmp_path / "first"
    first.mkdir()
    (first / "segments.yaml").write_text("segments:\n  buyers: {profile.orders: {gte: 1}}\n")
    (first / "policy.yaml").write_text("consent_required: []\ndefault_timezone: Europe/Rome\n")
    (first / "hello.yaml").write_text("id: hello\ntrigger: {event: identify}\nsteps:\n"
                                      "  - send: {channel: push, template: hello}\n")  # fmt: skip
    events: list[dict[str, Any]] = []
    for n in range(40):
        customer = f"c-{n:02d}"
        events.append({"event_id": f"i{n}", "type": "identify", "occurred_at": at(-3_600 + n), "channel": "web",
                       "customer_id": customer, "properties": {}})  # fmt: skip
        if n % 3:
            events.append({"event_id": f"p{n}", "type": "purchase", "occurred_at": at(-1_800 + n), "channel": "app",
                           "customer_id": customer, "properties": {"order_id": f"o{n}", "value": 5}})  # fmt: skip
    worker = stack.start_worker(journeys=first)
    stack.produce(events)
    assert len(stack.actions(["push"], until=40, timeout=60)) == 40
    stack.stop(worker)
    second = tmp_path / "second"
    shutil.copytree(first, second)
    instant = at(25)
    (second / "news.yaml").write_text(f"""id: news
trigger:
  schedule: {{at: "{instant}"}}
  audience: buyers
  spread: 10s
steps:
  - send: {{channel: email, template: news}}
""")
    stack.start_worker(journeys=second)
    archive = {key: orjson.loads(value) for key, value in stack.raw_records(f"{stack.env['ORCH_APP_ID']}.journeys")
               if value is not None}  # fmt: skip
    deployed_at = archive[b"news@1"]["deployed_at"]
    engines = [Engine.of(load([folder]), secret=DEV_COUPON_SECRET.encode()) for folder in (first, second)]
    ordered = sorted((event_from_document(e) for e in events), key=order_of)
    until = to_ms(parse_rfc3339(instant)) + 10_000  # the spread's end: simulate runs entries up to --until
    expected = Simulator(engines[0]).run(ordered, until, deploys=[(deployed_at, engines[1])]).actions
    assert Counter(a["template"] for a in expected) == {"hello": 40, "news": 26}  # the buyers, silent since
    got = stack.actions(CHANNELS, until=len(expected), timeout=120)
    assert Counter(a["action_id"] for a in got) == Counter(a["action_id"] for a in expected)
    assert by_id(got) == by_id(expected)
