"""bench/realistic.py's judge: what the worker did (its audit and action topics, read_committed) against `simulate`.

Actions are compared as tests/chaos/harness.py compares them (action ids, each once) and by content. The inputs the
worker took out of `simulate`'s order are found from its audit topic, keyed by customer, so each customer's records
stay in the customer agent's order: an input given another customer than `simulate` gave it, or one whose time is
before that of an earlier record of its customer (it arrived after a later event or a timer).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from bench.common import bootstrap_servers
from orchestrator.engine.identity import is_anonymous
from orchestrator.simulate import Result
from orchestrator.timefmt import parse_rfc3339

# ---------------------------------------------------------------------------------------- reading


class Reader:
    """The worker's audit topic (when each input's event record was committed) and its actions (read_committed)."""

    def __init__(self, audit: str, actions: Sequence[str], keep_trail: bool) -> None:
        self.audit, self.keep_trail = audit, keep_trail
        self.trail: list[dict[str, Any]] = []  # every audit record, with --json (the diagnosis)
        self.consumer = AIOKafkaConsumer(
            audit, *actions, bootstrap_servers=bootstrap_servers(), auto_offset_reset="earliest",
            enable_auto_commit=False, isolation_level="read_committed", fetch_max_wait_ms=50,
            max_partition_fetch_bytes=4 << 20,
        )  # fmt: skip
        self.audited: Counter[str] = Counter()  # event_id -> event/duplicate records seen
        self.resolved: dict[str, str] = {}  # event_id -> the customer its first audit record names
        # Per customer key the audit topic keeps the customer agent's order: an event whose time is before that of
        # an earlier record of its customer (an event or a timer) reached it late, i.e. out of simulate's order.
        self.latest: dict[str, str] = {}  # customer -> the latest `at` so far (whole seconds)
        self.late: dict[str, float] = {}  # event_id -> how late, s of event time
        self.audited_total = 0
        self.last_audit_ns = 0
        self.actions: list[dict[str, Any]] = []
        self.last_action_ns = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.consumer.start()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            batch = await self.consumer.getmany(timeout_ms=100, max_records=10_000)
            now = time.time_ns()
            for tp, records in batch.items():
                if tp.topic == self.audit:  # one step's records a Kafka record (docs/contract.md)
                    for record in records:
                        for audit in orjson.loads(record.value) if record.value is not None else []:
                            self.take(audit, now)
                            if self.keep_trail:
                                self.trail.append(audit)
                else:
                    self.actions.extend(orjson.loads(r.value) for r in records if r.value is not None)
                    self.last_action_ns = now if records else self.last_action_ns

    def take(self, audit: dict[str, Any], now: int) -> None:
        kind, customer, at = audit.get("kind"), str(audit.get("customer")), str(audit.get("at"))[:19]
        if kind == "identity_conflict":
            return  # written by ingest, not in the customer agent's order
        latest = self.latest.get(customer, "")
        if kind in ("event", "duplicate"):
            self.audited[audit["event_id"]] += 1
            self.resolved.setdefault(audit["event_id"], customer)
            self.audited_total += 1
            self.last_audit_ns = now
            if kind == "event" and at < latest:
                self.late[audit["event_id"]] = (parse_rfc3339(latest + "Z") - parse_rfc3339(at + "Z")).total_seconds()
        if at > latest:
            self.latest[customer] = at

    def check(self) -> None:
        if self._task is not None and self._task.done():
            self._task.result()  # raise the consumer's error

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.consumer.stop()


# ------------------------------------------------------------------------------------------ figures


@dataclass
class Figures:
    people: int
    records: int = 0
    events: int = 0  # valid records, resends included
    resends: int = 0
    garbage: int = 0
    keys: dict[str, int] = field(default_factory=dict)  # records by kind of key
    log_start: str = ""
    log_seconds: float = 0.0
    first_due_s: float = float("nan")  # first expected timer action, seconds after the first produce
    last_due_s: float = float("nan")
    produce_s: float = float("nan")
    processed_s: float = float("nan")  # first produce -> last event's audit record
    processed: int = 0
    cpu_s: float = float("nan")  # worker CPU over the burst
    broker_cpu_s: float = float("nan")
    other_cores: float = float("nan")
    total_cpu_s: float = float("nan")  # worker CPU from first produce to the last action read
    expected: int = 0
    published: int = 0
    missing: int = 0
    unexpected: int = 0
    duplicates: int = 0
    different: int = 0  # same action id, other content
    resolved_differently: dict[str, int] = field(default_factory=dict)  # inputs whose customer differs, by kind
    late_inputs: int = 0  # inputs that reached their customer after a later event or timer of that customer
    max_late_s: float = 0.0  # how late the latest of them was, in event time
    out_of_order_people: int = 0  # people with an input resolved differently or late
    explained: int = 0  # differing actions of those people
    by_step: dict[str, dict[str, int]] = field(default_factory=dict)  # "journey/step" -> kind -> count
    dlq: int = 0
    topics: dict[str, int] = field(default_factory=dict)  # committed records on each of the run's topics
    travelled: int = -1  # events re-keyed through the customers topic (the others took one hop); -1: not counted
    simulate_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def events_per_s(self) -> float:
        return self.processed / self.processed_s if self.processed_s > 0 else float("nan")

    @property
    def cpu_ms_per_event(self) -> float:
        return 1000 * self.cpu_s / self.processed if self.processed else float("nan")

    @property
    def differing(self) -> int:
        return self.missing + self.unexpected + self.duplicates + self.different


def person_of(event_id: str | None) -> str:
    """bench/omnichannel.py's event ids are `<customer_id>-<serial>`: the person, whatever key the event had."""
    return "" if event_id is None else event_id.rsplit("-", 1)[0]


def kind_of(customer: str | None) -> str:
    return "none" if customer is None else "anonymous" if is_anonymous(customer) else "known"


def out_of_order(result: Result, reader: Reader, figures: Figures) -> set[str]:
    """The people for whom the worker did not take the inputs in `simulate`'s order (order across keys): an input
    given another customer than `simulate` gave it (the identity graph had, or lacked, a link made under another
    key when it was ingested), or one that reached its customer after a later event or timer of that customer."""
    worker = reader.resolved
    expected: dict[str, str] = {}
    for record in result.audit:
        if record["kind"] == "event":
            expected.setdefault(record["event_id"], record["customer"])
    kinds: Counter[str] = Counter()
    people = set()
    for event_id, customer in expected.items():
        if worker.get(event_id) != customer:
            kinds[f"{kind_of(customer)} -> {kind_of(worker.get(event_id))}"] += 1
            people.add(person_of(event_id))
    figures.resolved_differently = dict(kinds)
    figures.late_inputs, figures.max_late_s = len(reader.late), max(reader.late.values(), default=0.0)
    people |= {person_of(i) for i in reader.late}
    figures.out_of_order_people = len(people)
    return people


def compare(expected: Sequence[dict[str, Any]], published: Sequence[dict[str, Any]], figures: Figures,
            people: set[str]) -> list[Any]:  # fmt: skip
    """As tests/chaos/harness.py: action ids published vs simulate's, each once; plus the content of each id."""
    want = {a["action_id"]: a for a in expected}
    got = Counter(a["action_id"] for a in published)
    first: dict[str, dict[str, Any]] = {}
    for action in published:
        first.setdefault(action["action_id"], action)
    figures.expected, figures.published = len(expected), len(published)
    figures.duplicates = sum(n - 1 for n in got.values() if n > 1)
    missing, unexpected = want.keys() - got.keys(), got.keys() - want.keys()
    different = {i for i in want.keys() & got.keys() if want[i] != first[i]}
    figures.missing, figures.unexpected, figures.different = len(missing), len(unexpected), len(different)
    steps: dict[str, Counter[str]] = {}
    for kind, ids, side in (("missing", missing, want), ("unexpected", unexpected, first),
                            ("different", different, want)):  # fmt: skip
        for i in ids:
            steps.setdefault(f"{side[i]['journey']}/{side[i]['step']}", Counter())[kind] += 1
    for i, n in got.items():
        if n > 1:
            steps.setdefault(f"{first[i]['journey']}/{first[i]['step']}", Counter())["duplicate"] += n - 1
    figures.by_step = {step: dict(kinds) for step, kinds in sorted(steps.items())}
    causes = [side[i].get("event_id") for ids, side in ((missing, want), (unexpected, first), (different, want))
              for i in ids] + [first[i].get("event_id") for i, n in got.items() for _ in range(n - 1)]  # fmt: skip
    figures.explained = sum(1 for cause in causes if person_of(cause) in people)
    return [{"kind": kind, "expected": want.get(i), "published": first.get(i)}
            for kind, ids in (("missing", missing), ("unexpected", unexpected), ("different", different))
            for i in sorted(ids)]  # fmt: skip


def diagnose(differing: list[Any], documents: Sequence[dict[str, Any]], result: Result, reader: Reader,
             people: set[str], limit: int = 50) -> dict[str, Any]:  # fmt: skip
    """For --json: the differing actions, and for the first `limit` people concerned, everything about them on
    both sides (events as sent, `simulate`'s audit and actions, the worker's audit and actions, in order)."""
    trail = reader.trail
    owner: dict[str, str] = {}  # customer key -> person, from the event records of both sides
    for record in [*result.audit, *trail]:
        if record.get("kind") in ("event", "duplicate"):
            owner.setdefault(record["customer"], person_of(record["event_id"]))
    concerned = sorted({person_of((d["expected"] or d["published"]).get("event_id")) for d in differing})[:limit]
    report = {}
    for person in concerned:
        mine = {c for c, p in owner.items() if p == person}
        report[person] = {
            "out_of_order": person in people,
            "events": [d for d in documents if person_of(d["event_id"]) == person],
            "simulate_audit": [r for r in result.audit if r["customer"] in mine],
            "worker_audit": [r for r in trail if r.get("customer") in mine],
            "simulate_actions": [a for a in result.actions if a["customer_id"] in mine],
            "worker_actions": [a for a in reader.actions if a["customer_id"] in mine],
        }
    return {"differing": differing, "concerned": report}
