"""Fault injection against real workers, Kafka and Redis, with `simulate` as the oracle.

    python -m tests.chaos.harness --minutes 30 [--people 12000] [--seed 7] [--json chaos.json]

Two `orchestrator worker` processes (exactly-once, the defaults) consume a generated log
(`tests/chaos/generator.py`) sent in real time, while faults hit them: SIGKILL of a worker at random moments
(a supervisor restarts any worker that is gone, as systemd would), a broker restart, a Redis restart, a broker
pause (SIGSTOP/SIGCONT: a network partition as clients see it). Broker and Redis faults happen between two
slots of the log, with every record of the slot acknowledged; while the harness is held up, the rest of the
log shifts by whole slots, so event times stay on even seconds and an event is never sent long after its time.

At the end: the action ids published (read_committed) must equal `simulate`'s, each exactly once; every
garbage record must be on the DLQ; the customers table's changelog (what a recovering worker reads) must
hold `simulate`'s final state for every customer. Needs the services of `scripts/services` (started if down).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from orchestrator.contract.events import event_from_document
from orchestrator.contract.loader import load
from orchestrator.engine import Engine
from orchestrator.engine.history import order_of
from orchestrator.measurement.kpis import SEP
from orchestrator.measurement.report import kpis_of
from orchestrator.serving.connect import connect_redis
from orchestrator.serving.keys import Keys
from orchestrator.serving.redis import read_kpis
from orchestrator.settings import DEV_COUPON_SECRET
from orchestrator.simulate import Result, Simulator
from orchestrator.stream.client import read_topic
from orchestrator.stream.records import decode_state
from tests.chaos.generator import SIGN_IN_GAP, SLOT_SECONDS, Planned, plan

ROOT = Path(__file__).parents[2]
JOURNEYS = Path(__file__).parent / "journeys"
CHANNELS = ["email", "push", "instore"]
TAIL_SECONDS = 40  # after the last event: the longest journey wait (21 s), timer lateness, a last recovery
WARMUP_TOPIC = "chaos.warmup"
LONG_SIGN_IN_GAP = 150  # slots (5 minutes)
BURST_EVERY, BURST_SLOTS = 12, 4  # every 12 slots, the next 4 slots' records are sent at once


@dataclass
class Fault:
    slot: int
    kind: str  # kill-w1, kill-w2, broker-restart, broker-pause, redis-restart


@dataclass
class Report:
    seed: int
    people: int
    slots: int
    records_sent: int = 0
    garbage_sent: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    unplanned_restarts: int = 0
    shift_seconds: int = 0
    landing_seconds: float = 0.0  # the slowest slot: from its planned time until its last record was acked
    expected_actions: int = 0
    published_actions: int = 0
    duplicates: int = 0
    lost: int = 0
    unexpected: int = 0
    dlq_records: int = 0
    customers_compared: int = 0
    state_mismatches: int = 0
    kpis_compared: int = 0  # KPI counters (orchestrator/measurement/kpis.py) in the worker's table, Redis or `report`
    kpi_mismatches: int = 0  # counters where the worker's `kpis` table differs from `report` on the same log
    redis_kpi_mismatches: int = 0  # ... where Redis (what the API serves) differs from `report`
    # People whose anonymous events reached the worker after their sign-in (under another key, so on another
    # partition): an outage outlasted the log's sign-in gap. Order across keys is not guaranteed, so such a run
    # cannot judge those people: it is not ok, and says why.
    late_anonymous: int = 0
    seconds: float = 0.0
    examples: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (self.duplicates == self.lost == self.unexpected == self.state_mismatches == 0
                and self.kpi_mismatches == self.redis_kpi_mismatches == self.late_anonymous == 0
                and self.dlq_records == self.garbage_sent and self.expected_actions > 0)  # fmt: skip

    def summary(self) -> str:
        faults = ", ".join(f"{n} {k}" for k, n in sorted(self.faults.items()))
        return (f"{self.records_sent} records ({self.garbage_sent} garbage), {self.people} people, "
                f"{self.slots * SLOT_SECONDS} s of traffic; faults: {faults}; {self.unplanned_restarts} unplanned "
                f"worker restarts; slowest slot acked {self.landing_seconds:.2f} s after its time; actions: "
                f"{self.expected_actions} expected, {self.published_actions} published, "
                f"{self.duplicates} duplicates, {self.lost} lost, {self.unexpected} unexpected; DLQ "
                f"{self.dlq_records}/{self.garbage_sent}; states: {self.customers_compared} compared, "
                f"{self.state_mismatches} different; KPI counters: {self.kpis_compared} compared, "
                f"{self.kpi_mismatches} different in the table, {self.redis_kpi_mismatches} in Redis; "
                f"{self.seconds:.0f} s")  # fmt: skip


def schedule(rng: random.Random, slots: int, kills: int, broker_restarts: int, pauses: int, redis: int) -> list[Fault]:
    """Faults at random slots, spread over the traffic (never in the first 5 slots: workers warm up)."""
    kinds = [f"kill-w{1 + i % 2}" for i in range(kills)] + ["broker-restart"] * broker_restarts
    kinds += ["broker-pause"] * pauses + ["redis-restart"] * redis
    rng.shuffle(kinds)
    span = max(1, (slots - 8) // max(1, len(kinds)))
    return [Fault(5 + i * span + rng.randrange(span), kind) for i, kind in enumerate(kinds)]


class Chaos:
    def __init__(self, env: dict[str, str], workdir: Path, journeys: Path = JOURNEYS, say: Any = print) -> None:
        self.workdir = workdir
        self.journeys = journeys
        self.say = say
        name = f"chaos-{uuid.uuid4().hex[:8]}"
        self.env = {
            **env, "ORCH_APP_ID": name, "ORCH_TOPIC_TOUCHPOINTS": f"{name}.touchpoints",
            "ORCH_TOPIC_DLQ": f"{name}.touchpoints.dlq", "ORCH_TOPIC_AUDIT": f"{name}.journeys.audit",
            "ORCH_TOPIC_ACTIONS_PREFIX": f"{name}.actions.", "ORCH_REDIS_PREFIX": f"{name}:", "ORCH_LOG_LEVEL": "info",
        }  # fmt: skip
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        self.down_until: dict[str, float] = {}  # killed on purpose: restart after this moment
        self.unplanned = 0
        self.sent: list[dict[str, Any]] = []  # every valid event as sent: the oracle's input
        self.result: Result | None = None  # `simulate` on `sent`, once checked
        self.metrics_ports: dict[str, int] = {}  # a worker's Prometheus port, when it serves one

    @property
    def bootstrap(self) -> str:
        return self.env["ORCH_KAFKA_BOOTSTRAP_SERVERS"]

    def log_of(self, name: str) -> Path:
        return self.workdir / f"{name}.log"

    def start(self, name: str) -> None:
        env = {**os.environ, **self.env, "ORCH_DATA_DIR": str(self.workdir / f"data-{name}"),
               "ORCH_METRICS_PORT": str(self.metrics_ports.get(name, 0))}  # fmt: skip
        with self.log_of(name).open("ab") as log:
            self.workers[name] = subprocess.Popen(
                [sys.executable, "-c", "from orchestrator.commands.cli import main; main()", "worker", "--journeys",
                 str(self.journeys)],
                stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT, start_new_session=True,
            )  # fmt: skip

    def kill(self, name: str, down_for: float) -> None:
        process = self.workers[name]
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        self.down_until[name] = time.monotonic() + down_for

    def supervise(self) -> None:
        """Restart every worker that is gone: killed ones after their down time, crashed ones at once."""
        for name, process in self.workers.items():
            if process.poll() is None:
                continue
            if name in self.down_until:
                if time.monotonic() < self.down_until[name]:
                    continue
                del self.down_until[name]
            else:
                self.unplanned += 1
                self.say(f"  {name} exited by itself (code {process.returncode}): restarting")
            self.start(name)

    def stop_all(self) -> None:
        for process in self.workers.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.workers.values():
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)

    async def services(self, *args: str) -> None:
        process = await asyncio.create_subprocess_exec(
            str(ROOT / "scripts" / "services"), *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
        _, err = await process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"scripts/services {' '.join(args)} failed: {err.decode()[-2000:]}")

    async def fault(self, fault: Fault, rng: random.Random) -> None:
        self.say(f"  slot {fault.slot}: {fault.kind}")
        if fault.kind.startswith("kill-"):
            self.kill(fault.kind.removeprefix("kill-"), down_for=rng.uniform(1, 6))
        elif fault.kind == "broker-restart":
            await self.services("restart", "kafka")
        elif fault.kind == "redis-restart":
            await self.services("restart", "redis")
        elif fault.kind == "broker-pause":
            await self.services("pause", "kafka")
            await asyncio.sleep(rng.uniform(3, 8))
            await self.services("resume", "kafka")

    async def warm_up(self, producer: AIOKafkaProducer) -> None:
        """Wait until the producer acks promptly again (reconnected, metadata fresh) after a fault: the next slot
        must land within its second, else its events could reach the workers after a timer they precede."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            began = time.monotonic()
            await producer.send_and_wait(WARMUP_TOPIC, b"warm-up")
            if time.monotonic() - began < 0.2:
                return
            await asyncio.sleep(0.2)
        raise RuntimeError("the producer does not ack promptly 120 s after a fault")

    async def run(self, records: list[Planned], faults: list[Fault], report: Report, rng: random.Random) -> None:
        """Send the log in real time while faults happen; then wait for the journeys' last timers."""
        self.start("w1")
        self.start("w2")
        await asyncio.sleep(8)  # both join before traffic: the first rebalance is not a fault
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", enable_idempotence=True,
                                    request_timeout_ms=120_000)  # fmt: skip
        await producer.start()
        await self.warm_up(producer)
        start = (int(time.time()) // 2 + 2) * 2  # an even second
        shift = 0
        stamped: dict[str, str] = {}  # event_id -> occurred_at: an exact duplicate keeps its original time
        by_slot: dict[int, list[Planned]] = {}
        for record in records:
            by_slot.setdefault(record.slot, []).append(record)
        pending = sorted(faults, key=lambda f: f.slot)
        sent_slots: set[int] = set()
        try:
            for slot in range(report.slots):
                planned_at = start + slot * SLOT_SECONDS + shift
                lag = time.time() - planned_at
                if lag > 0.5:  # held up by a fault: shift the rest of the log by whole slots
                    extra = SLOT_SECONDS * (int(lag) // SLOT_SECONDS + 1)
                    shift += extra
                    planned_at += extra
                await asyncio.sleep(max(0.0, planned_at - time.time()))
                acks = []
                # Now and then a burst: the next BURST_SLOTS slots' records at once, each dated when it happens (ahead
                # of now): the worker holds them until their time, whatever partition each person's records took.
                bursting = slot % BURST_EVERY == BURST_EVERY // 2
                burst = range(slot, slot + (BURST_SLOTS if bursting else 1))
                for at_slot in (s for s in burst if s not in sent_slots):
                    sent_slots.add(at_slot)
                    at_time = planned_at + (at_slot - slot) * SLOT_SECONDS
                    for record in by_slot.get(at_slot, []):
                        if record.document is None:
                            value = record.raw
                            report.garbage_sent += 1
                        else:
                            occurred_at = datetime.fromtimestamp(at_time, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                            document = {
                                **record.document,
                                "occurred_at": stamped.setdefault(record.document["event_id"], occurred_at),
                            }
                            self.sent.append(document)
                            value = orjson.dumps(document)
                        acks.append(await producer.send(self.env["ORCH_TOPIC_TOUCHPOINTS"], value, key=record.key))
                await asyncio.gather(*acks)
                report.landing_seconds = max(report.landing_seconds, time.time() - planned_at)
                report.records_sent += len(acks)
                self.supervise()
                while pending and pending[0].slot <= slot:
                    fault = pending.pop(0)
                    await self.fault(fault, rng)
                    await self.warm_up(producer)
                    report.faults[fault.kind.split("-w")[0]] += 1
                if slot % 15 == 0:
                    self.say(f"  slot {slot}/{report.slots}: {report.records_sent} records sent")
        finally:
            await producer.stop()
        report.shift_seconds = shift
        deadline = time.monotonic() + TAIL_SECONDS
        while time.monotonic() < deadline:
            self.supervise()
            await asyncio.sleep(1)

    async def collect(self, expected: int, timeout: float) -> list[dict[str, Any]]:
        """Every committed action, once the count reaches `expected` (or the timeout), after 5 s more."""
        topics = [self.env["ORCH_TOPIC_ACTIONS_PREFIX"] + channel for channel in CHANNELS]
        deadline = time.monotonic() + timeout
        while True:
            self.supervise()
            actions = [orjson.loads(r.value) for topic in topics for r in await read_topic(self.bootstrap, topic)]
            if len(actions) >= expected or time.monotonic() > deadline:
                break
            await asyncio.sleep(3)
        await asyncio.sleep(5)
        return [orjson.loads(r.value) for topic in topics for r in await read_topic(self.bootstrap, topic)]

    async def check(self, report: Report) -> None:
        loaded = load([self.journeys])
        engine = Engine.of(loaded, secret=DEV_COUPON_SECRET.encode())
        events = sorted((event_from_document(d) for d in self.sent), key=order_of)
        result = self.result = Simulator(engine, record_events=True).run(events)
        expected = Counter(a["action_id"] for a in result.actions)
        report.expected_actions = sum(expected.values())
        published = await self.collect(report.expected_actions, timeout=180)
        got = Counter(a["action_id"] for a in published)
        report.published_actions = sum(got.values())
        report.duplicates = sum(n - 1 for n in got.values() if n > 1)
        report.lost = len(expected.keys() - got.keys())
        report.unexpected = len(got.keys() - expected.keys())
        report.examples += [f"lost {i}" for i in sorted(expected.keys() - got.keys())[:5]]
        report.examples += [f"duplicate {i} x{n}" for i, n in got.items() if n > 1][:5]
        report.examples += [f"unexpected {i}" for i in sorted(got.keys() - expected.keys())[:5]]
        dead = [orjson.loads(r.value) for r in await read_topic(self.bootstrap, self.env["ORCH_TOPIC_DLQ"])]
        report.dlq_records = sum(1 for d in dead if d.get("reason"))
        changelog = f"{self.env['ORCH_APP_ID']}-customers-changelog"
        tables: dict[str, bytes | None] = {}
        for record in await read_topic(self.bootstrap, changelog):
            tables[record.key.decode()] = record.value
        final = {key: state.to_dict() for key, state in result.states.items()}
        present = {key: decode_state(value).to_dict() for key, value in tables.items() if value is not None}
        differing = []
        for key in final.keys() | present.keys():
            report.customers_compared += 1
            if final.get(key) != present.get(key):
                report.state_mismatches += 1
                differing.append(key)
                if report.state_mismatches <= 3:
                    report.examples.append(f"state of {key} differs")
        await self.check_kpis(report, result, engine)
        # What a person needs to see why: each differing customer's events, actions and both states.
        wrong = {a["customer_id"] for a in result.actions if a["action_id"] not in got}
        wrong |= {a["customer_id"] for a in published if a["action_id"] not in expected}
        keys = sorted(set(differing) | wrong)[:50]
        # The order in which the customer's partition got its records (events, merges, watermark marks), with the
        # wall-clock time each was written: where the worker's order left `simulate`'s, it shows.
        trail: dict[str, list[str]] = {key: [] for key in keys}
        late: set[str] = set()
        for record in await read_topic(self.bootstrap, f"{self.env['ORCH_APP_ID']}.customers"):
            item = orjson.loads(record.value)
            event = item.get("event") if isinstance(item, dict) else None
            if isinstance(event, dict) and "anonymous_id" in event and "customer_id" not in event \
                    and not item["customer"].startswith("anon:"):
                late.add(item["customer"])  # an anonymous event that found its sign-in already linked
            if record.key is not None and record.key.decode() in trail:
                written = datetime.fromtimestamp(record.timestamp / 1000, UTC).strftime("%H:%M:%S.%f")[:-3]
                trail[record.key.decode()].append(f"{written} @{record.offset} {record.value[:300].decode()}")
        diagnosis = {
            key: {"expected_state": final.get(key), "table_state": present.get(key),
                  "expected_actions": [a for a in result.actions if a["customer_id"] == key],
                  "published_actions": [a for a in published if a["customer_id"] == key],
                  "partition_trail": trail[key]}
            for key in keys
        }  # fmt: skip
        report.late_anonymous = len(late)
        report.examples += [f"anonymous events of {c} came after the sign-in" for c in sorted(late)[:5]]
        (self.workdir / "diagnosis.json").write_bytes(orjson.dumps(diagnosis, option=orjson.OPT_INDENT_2))
        (self.workdir / "events.jsonl").write_bytes(b"\n".join(orjson.dumps(d) for d in self.sent))


    async def check_kpis(self, report: Report, result: Result, engine: Engine) -> None:
        """The worker's KPI counters (its `kpis` table's changelog, summed over partitions, and the Redis hashes the
        API reads) must equal `report`'s on the same log (each segment's size included)."""
        expected = kpis_of(result, engine.segments).counts
        latest: dict[bytes, int] = {}  # the last record of a key is its value; a tombstone is zero
        for record in await read_topic(self.bootstrap, f"{self.env['ORCH_APP_ID']}-kpis-changelog"):
            latest[record.key] = int(record.value) if record.value is not None else 0
        table: Counter[str] = Counter()
        for key, value in latest.items():
            table[key.decode().split(SEP, 1)[1]] += value
        redis = connect_redis(self.env["ORCH_REDIS_URL"])
        try:
            served = await read_kpis(redis, Keys(self.env["ORCH_REDIS_PREFIX"]))
        finally:
            await redis.aclose()
        names = {n for n, v in expected.items() if v} | {n for n, v in table.items() if v}
        names |= {n for n, v in served.items() if v}
        report.kpis_compared = len(names)
        wrong = sorted(n for n in names if table[n] != expected[n])
        report.kpi_mismatches = len(wrong)
        report.examples += [f"KPI {n!r}: table {table[n]}, report {expected[n]}" for n in wrong[:5]]
        wrong = sorted(n for n in names if served[n] != expected[n])
        report.redis_kpi_mismatches = len(wrong)
        report.examples += [f"KPI {n!r}: Redis {served[n]}, report {expected[n]}" for n in wrong[:5]]


async def chaos(env: dict[str, str], workdir: Path, *, seed: int, people: int, slots: int, kills: int,
                broker_restarts: int, pauses: int, redis_restarts: int, sign_in_gap: int = SIGN_IN_GAP,
                say: Any = print) -> Report:  # fmt: skip
    rng = random.Random(seed)
    records = plan(seed, people, slots, run=uuid.uuid4().hex[:6], sign_in_gap=sign_in_gap)
    faults = schedule(rng, slots, kills, broker_restarts, pauses, redis_restarts)
    report = Report(seed, people, slots)
    harness = Chaos(env, workdir, say=say)
    t0 = time.monotonic()
    try:
        await harness.run(records, faults, report, rng)
        await harness.check(report)
    finally:
        harness.stop_all()
        report.unplanned_restarts = harness.unplanned
        report.seconds = time.monotonic() - t0
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos.harness", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30, help="minutes of traffic (default 30)")
    parser.add_argument("--people", type=int, default=0, help="people in the log (default: 400 per minute)")
    parser.add_argument("--seed", type=int, default=20261126)
    parser.add_argument("--sign-in-gap", type=int, default=0,
                        help="slots between a visitor's last anonymous event and their sign-in; it must outlast "
                             f"every outage (default: {SIGN_IN_GAP}, or {LONG_SIGN_IN_GAP} from 10 minutes on, where "
                             "recoveries read longer changelogs and faults pile up)")  # fmt: skip
    parser.add_argument("--json", type=Path, help="write the report here as JSON")
    parser.add_argument("--workdir", type=Path, default=Path(".chaos"), help="worker logs and data (default .chaos)")
    args = parser.parse_args(argv)
    slots = int(args.minutes * 60 / SLOT_SECONDS)
    people = args.people or int(400 * args.minutes)
    per_minute = max(1, int(args.minutes))
    subprocess.run([str(ROOT / "scripts" / "services"), "up"], check=True)
    env = {"ORCH_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:" + os.environ.get("ORCH_KAFKA_PORT", "9092"),
           "ORCH_REDIS_URL": "redis://127.0.0.1:" + os.environ.get("ORCH_REDIS_PORT", "6379") + "/0"}  # fmt: skip
    args.workdir.mkdir(parents=True, exist_ok=True)
    gap = args.sign_in_gap or (LONG_SIGN_IN_GAP if args.minutes >= 10 else SIGN_IN_GAP)
    report = asyncio.run(chaos(env, args.workdir, seed=args.seed, people=people, slots=slots, kills=2 * per_minute,
                               broker_restarts=max(1, per_minute // 5), pauses=max(1, per_minute // 5),
                               redis_restarts=max(1, per_minute // 10),
                               sign_in_gap=gap))  # fmt: skip
    print(report.summary())
    for example in report.examples:
        print("  " + example)
    if args.json:
        figures = {
            **asdict(report),
            "faults": dict(report.faults),
            "ok": report.ok,
            "date": datetime.now(UTC).isoformat(),
        }  # asdict turns a Counter's items into tuple keys
        args.json.write_text(json.dumps(figures, indent=2))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
