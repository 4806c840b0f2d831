"""Realistic burst: the shipped journeys on a generated omnichannel log, produced in one burst, against `simulate`.

    python -m bench.realistic [--people 3000] [--minutes 5] [--partitions 4] [--guarantee exactly_once|at_least_once]
                              [--lead 60] [--backfill] [--gap 25] [--seed N] [--journeys DIR] [--json FILE]

The log (bench/omnichannel.py): `--people` people over `--minutes` of event time, in 2-second slots, under the keys
real channels know: cookie before sign-in, customer id after, loyalty card alone at the till, email alone for a
newsletter click or opt-in; sign-ins merge the cookie's (and the card's) customer into the known one; carts, store
visits, purchases online and at the till, consent, a few exact resends and garbage records. It starts `--lead` s
ahead of now (an even second), so the journeys' timers fall due while the bench watches; with `--backfill` it is
dated 3 weeks in the past instead, so every timer is long due as soon as it is set (a replay of history).

Journeys: the shipped ones (journeys/) with their waits shortened (bench/omnichannel.py SHORT_WAITS: 30m -> 5s,
1d -> 4s, 2d -> 7s, 3d -> 21s, 7d -> 31s) and the shipped policy without quiet hours, written to a temporary
folder; or `--journeys DIR` as it is.

1. `Simulator` (orchestrator/simulate.py, as tests/chaos/harness.py runs it: events in `occurred_at` order)
   computes the expected actions.
2. `orchestrator worker` starts as a subprocess: ORCH_STORE=memory://, --guarantee, a fresh app id, topics
   (--partitions each) and Redis prefix, the development secrets `simulate` uses; warm-up events until it answers.
3. A child process produces the whole log in one burst (acks=all, idempotent, 5 ms linger, as `orchestrator send`),
   each record keyed as above (garbage unkeyed).
4. The bench reads the worker's audit topic and action topics (read_committed): an input is processed once its
   `event` audit record is committed, so events/s = events / (first produce -> the audit record of the last
   input), and worker CPU ms/event (/proc/<pid>/stat, all threads) is over the same interval. It then reads
   actions until every expected one is in and every input audited (an input waiting behind a timer of its
   customer, or dated at the end of the log, is taken at its time), or `--idle-timeout` s without a new one once
   the last is due. When the
   burst is not processed before the first timer falls due (a slow worker, a short `--lead`), a note says so:
   timers then wait for the input partition of their number (correct), and the burst's figures include them.

It prints the figures, the committed records on each of the run's Kafka topics per input record (the input, the
internal topics, the changelogs, actions, audit: what the design writes), the actions expected / published /
missing / unexpected / duplicates / with the same id but other content (by journey and step), the DLQ count
against the garbage sent, and a README row. Then why they
differ: a burst keeps each key's order but not the order across keys (docs/identity.md), and this log moves people
across keys, so it counts the inputs the worker took out of `simulate`'s order: resolved to another customer (a
link made under another key not yet, or already, in the identity graph), or reaching their customer after a later
event or timer of that customer (from the worker's audit topic, which keeps each customer's order), how late in
event time, and how many of the differing actions belong to the people concerned (bench/verdict.py). A benchmark,
not a test: it asserts nothing. `--json FILE` writes the figures, every differing action (both sides) and, for the
first 50 people concerned, their events and both sides' audit records and actions.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pickle
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from bench.common import (
    GUARANTEES,
    ROOT,
    Meter,
    bootstrap_servers,
    clean_up,
    fmt,
    machine_line,
    machine_short,
    markdown_table,
    records_by_topic,
    start_worker,
    stop,
    tail,
    wait_for_members,
    wait_for_topics,
    worker_env,
    worker_problems,
)
from bench.omnichannel import GAP, SLOT_MS, plan, short_journeys
from bench.verdict import Figures, Reader, compare, diagnose, out_of_order
from orchestrator.contract.events import event_from_document
from orchestrator.contract.loader import load
from orchestrator.engine import Engine
from orchestrator.engine.history import order_of
from orchestrator.engine.identity import DEV_IDENTITY_SECRET
from orchestrator.settings import DEV_COUPON_SECRET
from orchestrator.simulate import Result, Simulator
from orchestrator.timefmt import parse_rfc3339
from tests.chaos.generator import Planned

SHIPPED = ROOT / "journeys"
BACKFILL_DAYS = 21
WARMUP_EVENTS = 8


# --------------------------------------------------------------------------------------------- log


def stamp(planned: Sequence[Planned], start_ms: int) -> tuple[list[tuple[bytes | None, bytes]], list[dict[str, Any]]]:
    """The records to send, in order, and the valid events as sent (`simulate`'s input). A resend keeps the time
    of the event it repeats."""
    records: list[tuple[bytes | None, bytes]] = []
    documents: list[dict[str, Any]] = []
    stamped: dict[str, str] = {}
    for item in planned:
        if item.document is None:
            records.append((item.key, item.raw))
            continue
        at = datetime.fromtimestamp((start_ms + item.slot * SLOT_MS) / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        document = {**item.document, "occurred_at": stamped.setdefault(item.document["event_id"], at)}
        documents.append(document)
        records.append((item.key, orjson.dumps(document)))
    return records, documents


def expected_result(journeys: Path, documents: Sequence[dict[str, Any]]) -> tuple[Engine, Result]:
    loaded = load([journeys])
    if loaded.problems:
        raise SystemExit(f"journeys in {journeys} are not valid: {loaded.problems[:3]}")
    engine = Engine.of(loaded, secret=DEV_COUPON_SECRET.encode())
    events = sorted((event_from_document(d) for d in documents), key=order_of)
    return engine, Simulator(engine, record_events=True, identity_secret=DEV_IDENTITY_SECRET).run(events)


async def produce(path: Path, topic: str) -> tuple[int, int]:
    """Every record of the pickled list at `path`, as fast as the producer takes them; (first send, last ack)."""
    records: list[tuple[bytes | None, bytes]] = pickle.loads(path.read_bytes())
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers(), acks="all", enable_idempotence=True,
                                linger_ms=5)  # fmt: skip
    await producer.start()
    try:
        first = time.time_ns()
        pending = [await producer.send(topic, value, key=key) for key, value in records]
        await asyncio.gather(*pending)
        return first, time.time_ns()
    finally:
        await producer.stop()


async def produce_in_child(path: Path, topic: str) -> tuple[int, int]:
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.realistic", "--produce-child", str(path), topic, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await child.communicate()
    if child.returncode != 0:
        raise RuntimeError(f"load generator exited with {child.returncode}")
    first, last = orjson.loads(out.splitlines()[-1])
    return int(first), int(last)


# ---------------------------------------------------------------------------------------------- run


async def run(args: argparse.Namespace, prefix: str, tmp: Path, children: list[Any]) -> tuple[Figures, dict[str, Any]]:
    figures = Figures(args.people)
    journeys = args.journeys or tmp / "journeys"
    if args.journeys is None:
        short_journeys(SHIPPED, journeys)
    slots = int(args.minutes * 60 * 1000 // SLOT_MS)
    planned = plan(args.seed, args.people, slots, run=f"{args.seed:06x}"[-6:], gap=args.gap)  # same args, same log
    now_ms = int(time.time() * 1000)
    start_ms = now_ms - BACKFILL_DAYS * 86_400_000 if args.backfill else now_ms + int(args.lead * 1000)
    start_ms = (start_ms // SLOT_MS + 1) * SLOT_MS  # an even second
    records, documents = stamp(planned, start_ms)
    figures.records, figures.events = len(records), len(documents)
    figures.garbage = figures.records - figures.events
    figures.resends = figures.events - len({d["event_id"] for d in documents})
    figures.keys = dict(Counter("none" if k is None else k.split(b":", 1)[0].decode() if b":" in k else "customer_id"
                                for k, _ in records))  # fmt: skip
    figures.keys["anonymous_id"] = figures.keys.pop("anon", 0)
    figures.log_start = datetime.fromtimestamp(start_ms / 1000, UTC).isoformat(timespec="seconds")
    figures.log_seconds = slots * SLOT_MS / 1000
    began = time.process_time()
    engine, result = expected_result(journeys, documents)
    figures.simulate_s = time.process_time() - began
    inputs = {d["event_id"] for d in documents}
    dues = sorted(parse_rfc3339(a["at"]).timestamp() for a in result.actions)
    print(f"bench.realistic: {figures.records} records ({figures.events} events, {figures.garbage} garbage) of "
          f"{args.people} people over {figures.log_seconds:.0f} s from {figures.log_start}; simulate: "
          f"{len(result.actions)} actions in {figures.simulate_s:.1f} s", file=sys.stderr, flush=True)  # fmt: skip

    app_id = f"{prefix}-orch"
    extra = [f"ORCH_TOPIC_PARTITIONS={args.partitions}", f"ORCH_COUPON_SECRET={DEV_COUPON_SECRET}",
             f"ORCH_IDENTITY_SECRET={DEV_IDENTITY_SECRET.decode()}", *args.worker_env]  # fmt: skip
    env = worker_env(app_id, tmp / "data", args.guarantee, extra)
    log = tmp / "worker.log"
    worker = start_worker(journeys, env, log)
    children.append(worker)
    print(f"  worker pid {worker.pid}, app id {app_id}, log {log}", file=sys.stderr, flush=True)
    others = []
    for number in range(2, args.workers + 1):  # the same app: they share the partitions
        other_log = tmp / f"worker{number}.log"
        others.append(start_worker(journeys, {**env, "ORCH_DATA_DIR": str(tmp / f"data{number}")}, other_log))
        children.append(others[-1])
        print(f"  worker {number} pid {others[-1].pid}, log {other_log}", file=sys.stderr, flush=True)
    actions = [f"{env['ORCH_TOPIC_ACTIONS_PREFIX']}{channel}" for channel in sorted(engine.channels)]
    audit, touchpoints = env["ORCH_TOPIC_AUDIT"], env["ORCH_TOPIC_TOUCHPOINTS"]
    await wait_for_topics([touchpoints, audit, *actions], worker, log, args.ready_timeout)
    await wait_for_members(app_id, args.workers, args.ready_timeout)
    reader = Reader(audit, actions, keep_trail=args.json is not None)
    await reader.start()
    try:
        warm = tmp / "warm.pickle"
        warm_ids = [f"{prefix}-warm-{n}" for n in range(WARMUP_EVENTS)]
        at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        warm.write_bytes(pickle.dumps([(i.encode(), orjson.dumps({"event_id": i, "type": "page_view", "channel": "web",
                                                                  "customer_id": i, "occurred_at": at}))
                                       for i in warm_ids]))  # fmt: skip
        await produce_in_child(warm, touchpoints)
        deadline = time.monotonic() + args.ready_timeout
        while not all(i in reader.audited for i in warm_ids):
            reader.check()
            if time.monotonic() > deadline:
                raise RuntimeError(f"warm-up events not processed in {args.ready_timeout:.0f} s:\n{tail(log)}")
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)
        burst = tmp / "log.pickle"
        burst.write_bytes(pickle.dumps(records))
        print(f"  worker ready; producing {figures.records} records in one burst ...", file=sys.stderr, flush=True)
        meter = Meter(worker.pid, *(other.pid for other in others))
        first, last = await produce_in_child(burst, touchpoints)
        figures.produce_s = (last - first) / 1e9
        if dues:
            figures.first_due_s, figures.last_due_s = dues[0] - first / 1e9, dues[-1] - first / 1e9
        seen, since = -1, time.monotonic()
        while (done := sum(1 for i in inputs if i in reader.audited)) < len(inputs):  # every input, or idle
            reader.check()
            if done != seen:
                seen, since = done, time.monotonic()
            if time.monotonic() - since > args.idle_timeout:
                figures.notes.append(f"only {done}/{len(inputs)} inputs processed (no new one for "
                                     f"{args.idle_timeout:.0f} s)")  # fmt: skip
                break
            await asyncio.sleep(0.1)
        usage = meter.read()
        figures.processed = figures.events if done == len(inputs) else done
        figures.processed_s = (reader.last_audit_ns - first) / 1e9
        figures.cpu_s, figures.broker_cpu_s, figures.other_cores = usage.cpu, usage.broker_cpu, usage.other_cores
        print(f"  inputs processed after {figures.processed_s:.1f} s; waiting for {len(result.actions)} actions ...",
              file=sys.stderr, flush=True)  # fmt: skip
        # Every action, and every input: one waiting behind a timer of its customer, or dated at the end of the
        # log, is taken at its time, which may be after the last action's.
        want = {a["action_id"] for a in result.actions}
        end = time.monotonic() + args.timeout
        last_due = max([*dues, *(parse_rfc3339(d["occurred_at"]).timestamp() for d in documents)], default=0.0)
        while time.monotonic() < end:
            reader.check()
            if want <= {a["action_id"] for a in reader.actions} and all(i in reader.audited for i in inputs):
                break
            quiet = (time.time_ns() - max(reader.last_action_ns, reader.last_audit_ns, first)) / 1e9
            if time.time() > last_due + args.grace and quiet > args.idle_timeout:
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(3.0)  # late duplicates, unexpected actions
        reader.check()
        if (late := len(inputs) - sum(1 for i in inputs if i in reader.audited)) < len(inputs) - done:
            figures.notes.append(f"{len(inputs) - done - late} inputs processed after the burst, at their time or "
                                 "after a timer of their customer due later; "
                                 + (f"{late} never" if late else "none left out"))  # fmt: skip
        wanted = Counter(r["event_id"] for r in result.audit if r["kind"] in ("event", "duplicate"))
        odd = sorted(i for i in wanted.keys() | (reader.audited.keys() - set(warm_ids))
                     if wanted[i] != reader.audited[i])  # fmt: skip
        if odd:
            figures.notes.append(f"{len(odd)} inputs audited another number of times than in simulate, e.g. "
                                 + ", ".join(f"{i} ({reader.audited[i]} vs {wanted[i]})" for i in odd[:5]))
        figures.total_cpu_s = meter.read().cpu
    finally:
        await reader.stop()
    people = out_of_order(result, reader, figures)
    differing = compare(result.actions, reader.actions, figures, people)
    diagnosis = diagnose(differing, documents, result, reader, people) if args.json is not None else {}
    figures.dlq = await count_dlq(env["ORCH_TOPIC_DLQ"])
    figures.topics = {name.removeprefix(prefix).lstrip("-."): n for name, n in (await records_by_topic(prefix)).items()}
    figures.travelled = await count_travelled(f"{app_id}.customers")
    if figures.dlq != figures.garbage:
        figures.notes.append(f"{figures.dlq} DLQ records for {figures.garbage} garbage records sent")
    if figures.other_cores > 0.1:
        figures.notes.append(f"other processes used {figures.other_cores:.2f} cores during the burst: figures are "
                             "disturbed, run again on a quiet machine")  # fmt: skip
    if not args.backfill and figures.processed_s > figures.first_due_s:
        figures.notes.append(f"the burst was processed after the first timer fell due (+{figures.first_due_s:.0f} s):"
                             " timers waited for the input (correct), and --lead is too short for a pure burst")
    figures.notes.extend(n for n in await worker_problems(env["ORCH_TOPIC_DLQ"], log, worker) if "DLQ" not in n)
    return figures, diagnosis


async def count_travelled(topic: str) -> int:
    """Events the worker sent through its customers topic: read on another input partition than their customer's,
    or merging (the rest went straight to their customer: one hop, docs/streaming.md)."""
    from orchestrator.stream.client import read_topic

    return sum(1 for record in await read_topic(bootstrap_servers(), topic)
               if record.value.startswith((b'{"event"', b'{"expect"')))  # a merging event sends one expect


async def count_dlq(topic: str) -> int:
    from orchestrator.stream.client import read_topic

    return len(await read_topic(bootstrap_servers(), topic))


# ------------------------------------------------------------------------------------------ report


def report(figures: Figures, args: argparse.Namespace, command: str) -> None:
    f = figures
    when = f"backfill, {BACKFILL_DAYS} days ago" if args.backfill else f"+{args.lead:g} s lead"
    print()
    print(f"{machine_line(args.load_at_start)}; {args.guarantee}; {args.partitions} partitions asked of the worker; "
          f"{args.workers} worker(s)")
    print(f"command: {command}")
    print(f"log: {f.records:,} records ({f.events:,} events, {f.resends} resends, {f.garbage} garbage) of {f.people:,}"
          f" people over {f.log_seconds:.0f} s from {f.log_start} ({when}); keys: "
          + ", ".join(f"{k} {n:,}" for k, n in sorted(f.keys.items())))  # fmt: skip
    due = ("all long due" if args.backfill else
           f"due from +{fmt(f.first_due_s)} s to +{fmt(f.last_due_s)} s after the first produce")  # fmt: skip
    print(f"simulate: {f.expected:,} actions ({f.simulate_s:.1f} s CPU); the actions' times {due}")
    print(f"burst: produced in {fmt(f.produce_s, 2)} s; {f.processed:,} inputs processed in {fmt(f.processed_s, 2)} s:"
          f" {fmt(f.events_per_s)} events/s; worker CPU {fmt(f.cpu_ms_per_event, 3)} ms/event "
          f"(broker {fmt(1000 * f.broker_cpu_s / f.processed if f.processed else float('nan'), 3)} ms/event, other "
          f"load {f.other_cores:.2f} cores); worker CPU until the last action {fmt(f.total_cpu_s, 1)} s")  # fmt: skip
    if f.topics:
        total, busiest = sum(f.topics.values()), sorted(f.topics.items(), key=lambda t: -t[1])
        print(f"Kafka records per input record ({f.records:,} + {WARMUP_EVENTS} warm-up): {total / f.records:.2f} in "
              "all; " + ", ".join(f"{name} {n / f.records:.2f}" for name, n in busiest))  # fmt: skip
    if f.travelled >= 0:
        print(f"hops: {f.events - f.travelled:,} of {f.events:,} valid inputs went straight to their customer (one "
              f"hop), {f.travelled:,} through the customers topic (keyed otherwise, or merging)")  # fmt: skip
    print(f"actions: {f.expected:,} expected, {f.published:,} published, {f.missing} missing, {f.unexpected} "
          f"unexpected, {f.duplicates} duplicates, {f.different} with other content: {f.differing} differ from "
          f"simulate; DLQ {f.dlq}/{f.garbage}")  # fmt: skip
    for step, kinds in f.by_step.items():
        print(f"  {step}: " + ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items())))
    moved = sum(f.resolved_differently.values())
    print(f"order across keys: {moved} inputs resolved to another customer than in simulate"
          + (" (" + ", ".join(f"{k} {n}" for k, n in sorted(f.resolved_differently.items())) + ")" if moved else "")
          + f", {f.late_inputs} reached their customer after a later event or timer of theirs (up to "
          f"{f.max_late_s:.0f} s of event time late): {f.out_of_order_people} people, whose actions are "
          f"{f.explained} of the {f.differing} differing")  # fmt: skip
    for note in f.notes:
        print(f"note: {note}")
    head = ("date", "machine", "guarantee", "people", "events", "log", "events/s", "worker CPU ms/ev",
            "actions expected", "published", "missing", "unexpected", "duplicates", "other content")  # fmt: skip
    row = (f"{datetime.now().astimezone():%Y-%m-%d %H:%M}", machine_short(), args.guarantee, f"{f.people:,}",
           f"{f.events:,}", "backfill" if args.backfill else "live", fmt(f.events_per_s), fmt(f.cpu_ms_per_event, 3),
           f"{f.expected:,}", f"{f.published:,}", f.missing, f.unexpected, f.duplicates, f.different)  # fmt: skip
    print("\nREADME row:\n")
    markdown_table(head, [row])


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.realistic", description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=3000, help="people in the log (default 3000)")
    parser.add_argument("--minutes", type=float, default=5, help="minutes of event time the log spans (default 5)")
    parser.add_argument("--workers", type=int, default=1, help="workers sharing the partitions (default 1)")
    parser.add_argument("--partitions", type=int, default=4, help="partitions of the worker's topics (default 4)")
    parser.add_argument("--guarantee", choices=GUARANTEES, default="exactly_once")
    parser.add_argument("--lead", type=float, default=60, help="the log starts this many s ahead of now (default 60)")
    parser.add_argument("--backfill", action="store_true", help=f"date the log {BACKFILL_DAYS} days in the past")
    parser.add_argument("--journeys", type=Path, default=None, help="journeys folder (default: shipped, short waits)")
    parser.add_argument("--gap", type=int, default=GAP,
                        help=f"slots (2 s) between events that need a link made under another key (default {GAP})")
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--timeout", type=float, default=1800, help="max seconds to wait for the actions")
    parser.add_argument("--idle-timeout", type=float, default=30, help="give up after this long without progress")
    parser.add_argument("--grace", type=float, default=15, help="s past the last action's due time before giving up")
    parser.add_argument("--ready-timeout", type=float, default=120, help="max seconds for start-up and warm-up")
    parser.add_argument("--worker-env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment for the worker (repeatable)")  # fmt: skip
    parser.add_argument("--json", type=Path, help="write the figures and the differing actions here")
    parser.add_argument("--keep-topics", action="store_true", help="do not delete the run's topics and Redis keys")
    parser.add_argument("--produce-child", nargs=2, metavar=("FILE", "TOPIC"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.produce_child:
        path, topic = args.produce_child
        print(orjson.dumps(asyncio.run(produce(Path(path), topic))).decode())
        return
    command = "python -m bench.realistic " + " ".join(sys.argv[1:] if argv is None else argv)
    prefix = f"real-{uuid.uuid4().hex[:8]}"
    args.load_at_start = os.getloadavg()[0]
    children: list[Any] = []
    with tempfile.TemporaryDirectory(prefix="bench-realistic-") as tmp:
        try:
            figures, diagnosis = asyncio.run(run(args, prefix, Path(tmp), children))
        finally:
            for child in children:
                stop(child)
            clean_up(prefix, args.keep_topics, "bench.realistic")
    report(figures, args, command.strip())
    if args.json is not None:
        args.json.write_bytes(orjson.dumps({**asdict(figures), **diagnosis}, option=orjson.OPT_INDENT_2))
        print(f"figures written to {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
