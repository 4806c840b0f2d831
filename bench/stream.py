"""End-to-end streaming benchmark: the orchestrator worker, a bare faust agent and a bare aiokafka loop, side by side.

    python -m bench.stream [--events 20000] [--rate 0] [--guarantee exactly_once|at_least_once]
                           [--customers 1000] [--pipelines orchestrator,faust,aiokafka] [--journeys DIR]

The ceiling: `python -m bench.stream --events 20000`; latency at a sustained rate:
`python -m bench.stream --events 20000 --rate 1000` (and again with `--guarantee at_least_once`).

The pipelines run in ONE invocation, one after the other (never two at once), on the same broker
(ORCH_KAFKA_BOOTSTRAP_SERVERS, default 127.0.0.1:9092), each in its own process, each with fresh topics of 4
partitions, all named after the run (deleted at the end with the run's Redis keys, unless --keep-topics):

  (A) orchestrator: `orchestrator worker` as a subprocess (ORCH_STORE=memory://, ORCH_PROCESSING_GUARANTEE from
      --guarantee, a fresh app id, topic names and Redis prefix). Journeys: a generated folder where `page_view`
      triggers one `web` send per event (reentry: always, no consent needed), so every input event yields
      exactly one action (or --journeys DIR).
  (B) bare faust: bench/bare_faust.py, a faust-streaming app with the worker's faust settings and the same
      processing_guarantee: one agent, `take_events(500, within=0.01)`, orjson.loads + orjson.dumps, gathered
      sends (under exactly_once through the source partition's transaction).
  (C) bare aiokafka: bench/bare_aiokafka.py, consumer -> orjson -> producer, auto-commit, no transactions (the
      floor of a Python consume -> produce loop, whatever --guarantee says).

For each: warm up until outputs flow, then produce N events (keyed by customer) at max rate (--rate 0) or paced
at --rate events/s by a load generator in its own process, and read the outputs with isolation_level=
read_committed, matched to inputs by `event_id`. Throughput = outputs / (first produce -> last output received);
latency per event = output received - event created (time.time_ns(), same machine); CPU ms/event = the
pipeline process's user + system time (/proc/<pid>/stat, all threads) from first produce to last output, per
output (at a paced rate this includes the process's idle polling). Broker CPU likewise; "other load" is what
the rest of the machine used meanwhile (a note says so when the figures are disturbed).

It prints one table row per pipeline and the ratios orchestrator / bare faust and orchestrator / bare aiokafka
(throughput, latencies, CPU per event), then the same as Markdown, and one combined row for README's table.
At max rate the latency is mostly queueing behind the backlog: the latency figures come from a --rate below
every pipeline's capacity. A benchmark, not a test: it asserts nothing, but it reports missing or duplicate
outputs and anything the worker logged or dead-lettered.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import math
import os
import sys
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import (
    GUARANTEES,
    Meter,
    clean_up,
    create_topics,
    fmt,
    logged_problems,
    machine_line,
    machine_short,
    markdown_table,
    percentile,
    print_table,
    ratio,
    spawn,
    start_worker,
    stop,
    tail,
    wait_for_topics,
    worker_env,
    worker_problems,
)
from bench.traffic import BENCH_JOURNEY, BENCH_POLICY, CHANNEL, WARMUP_EVENTS, Collector, produce_in_child

PIPELINES = ("orchestrator", "faust", "aiokafka")
NAMES = {"orchestrator": "orchestrator", "faust": "bare faust", "aiokafka": "bare aiokafka"}


# -------------------------------------------------------------------------------------- measuring


@dataclass
class Result:
    name: str
    events: int
    received: int = 0
    duplicates: int = 0
    unexpected: int = 0
    seconds: float = math.nan
    produce_seconds: float = math.nan
    latencies_ms: list[float] = field(default_factory=list)
    cpu_seconds: float = math.nan  # of the pipeline's process, first produce -> last output
    broker_cpu_seconds: float = math.nan  # of the local Kafka broker, same interval
    machine_busy: float = math.nan  # share of all cores busy (anything on the machine), same interval
    other_cores: float = math.nan  # cores used by processes other than pipeline, broker and this bench
    notes: list[str] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        return self.received / self.seconds if self.seconds > 0 else math.nan

    def p(self, q: float) -> float:
        return percentile(self.latencies_ms, q)

    @property
    def cpu_per_1k(self) -> float:  # CPU s per 1,000 events = ms per event
        return 1000 * self.cpu_seconds / self.received if self.received else math.nan

    @property
    def broker_cpu_per_1k(self) -> float:
        return 1000 * self.broker_cpu_seconds / self.received if self.received else math.nan


async def measure(
    name: str, in_topic: str, out_topics: Sequence[str], pid: int, args: argparse.Namespace, tag: str
) -> Result:
    result = Result(name, args.events)
    collector = Collector(out_topics)
    await collector.start()
    try:
        await produce_in_child(in_topic, f"{tag}-warm", WARMUP_EVENTS, WARMUP_EVENTS, 0)
        warm = [f"{tag}-warm-{i}" for i in range(WARMUP_EVENTS)]
        if not await collector.wait_for(warm, timeout=args.ready_timeout):
            raise RuntimeError(f"{name}: warm-up outputs did not arrive in {args.ready_timeout:.0f} s")
        await asyncio.sleep(1.0)  # let the pipeline go idle
        print(f"  {name}: ready, producing {args.events} events ...", file=sys.stderr, flush=True)
        ids = [f"{tag}-{i}" for i in range(args.events)]
        meter = Meter(pid)
        first, last = await produce_in_child(in_topic, tag, args.events, args.customers, args.rate)
        result.produce_seconds = (last - first) / 1e9
        complete = await collector.wait_for(ids, timeout=args.timeout, idle=args.idle_timeout)
        usage = meter.read()
        result.cpu_seconds, result.broker_cpu_seconds = usage.cpu, usage.broker_cpu
        result.machine_busy, result.other_cores = usage.machine_busy, usage.other_cores
        if result.other_cores > 0.1:
            result.notes.append(f"{name}: other processes used {result.other_cores:.2f} cores meanwhile: "
                                "figures are disturbed, run again on a quiet machine")  # fmt: skip
        await asyncio.sleep(0.5)  # late duplicates
        arrived = [collector.arrived[i] for i in ids if i in collector.arrived]
        result.received = len(arrived)
        result.latencies_ms = sorted((received - sent) / 1e6 for received, sent in arrived if sent is not None)
        result.duplicates, result.unexpected = collector.duplicates, collector.unexpected
        if arrived:
            result.seconds = (max(received for received, _ in arrived) - first) / 1e9
        if not complete:
            result.notes.append(f"{name}: only {result.received}/{args.events} outputs arrived")
        if len(result.latencies_ms) < result.received:
            result.notes.append(f"{name}: {result.received - len(result.latencies_ms)} outputs without data.sent_at_ns")
        if result.duplicates:
            result.notes.append(f"{name}: {result.duplicates} duplicate outputs")
    finally:
        await collector.stop()
    return result


# ------------------------------------------------------------------------------------- pipelines


async def run_orchestrator(args: argparse.Namespace, prefix: str, tmp: Path, children: list[Any]) -> Result:
    app_id = f"{prefix}-orch"
    journeys = args.journeys
    if journeys is None:
        journeys = tmp / "journeys"
        journeys.mkdir()
        (journeys / "bench-echo.yaml").write_text(BENCH_JOURNEY)
        (journeys / "policy.yaml").write_text(BENCH_POLICY)
    env = worker_env(app_id, tmp / "data", args.guarantee, args.worker_env)
    log = tmp / "worker.log"
    worker = start_worker(journeys, env, log)
    children.append(worker)
    print(f"  orchestrator: worker pid {worker.pid}, app id {app_id}, log {log}", file=sys.stderr, flush=True)
    actions = f"{app_id}.actions.{CHANNEL}"
    await wait_for_topics([env["ORCH_TOPIC_TOUCHPOINTS"], actions], worker, log, args.ready_timeout)
    try:
        result = await measure(NAMES["orchestrator"], env["ORCH_TOPIC_TOUCHPOINTS"], [actions], worker.pid, args,
                               app_id)  # fmt: skip
    except Exception as exc:
        raise RuntimeError(f"{exc}\nworker log tail:\n{tail(log)}") from exc
    result.notes.extend(await worker_problems(env["ORCH_TOPIC_DLQ"], log, worker))
    return result


async def run_bare(kind: str, args: argparse.Namespace, prefix: str, tmp: Path, children: list[Any]) -> Result:
    """(B) `faust` or (C) `aiokafka`: a child process from its own input topic to its own output topic."""
    name, tag = NAMES[kind], f"{prefix}-{kind}"
    in_topic, out_topic = f"{tag}.in", f"{tag}.out"
    await create_topics([in_topic, out_topic])
    argv = [sys.executable, "-m", f"bench.bare_{kind}", in_topic, out_topic, tag]
    if kind == "faust":
        commit_interval = dict(item.split("=", 1) for item in args.worker_env).get("ORCH_COMMIT_INTERVAL", "0.25")
        argv += ["--guarantee", args.guarantee, "--commit-interval", commit_interval]
    log = tmp / f"bare-{kind}.log"
    child = spawn(argv, log)
    children.append(child)
    print(f"  {name}: pid {child.pid}, log {log}", file=sys.stderr, flush=True)
    await wait_for_topics([in_topic, out_topic], child, log, args.ready_timeout)
    try:
        result = await measure(name, in_topic, [out_topic], child.pid, args, tag)
    except Exception as exc:
        raise RuntimeError(f"{exc}\n{name} log tail:\n{tail(log)}") from exc
    if child.poll() is not None:
        result.notes.append(f"{name}: exited with {child.returncode}: {tail(log, 500)}")
    result.notes.extend(logged_problems(name, log))
    return result


# -------------------------------------------------------------------------------------- reporting


def report(results: list[Result], args: argparse.Namespace, command: str) -> None:
    env = (f"{machine_line(args.load_at_start)}; {args.guarantee}; {args.events} events over {args.customers} "
           f"customers; rate {'max' if args.rate <= 0 else f'{args.rate:g}/s'}"
           + (f"; worker env {' '.join(args.worker_env)}" if args.worker_env else ""))  # fmt: skip
    head = ("pipeline", "events out", "throughput ev/s", "p50 ms", "p99 ms", "max ms", "CPU ms/ev",
            "broker CPU ms/ev", "other load", "produce s")  # fmt: skip
    rows: list[tuple[str, ...]] = [
        (r.name, f"{r.received}/{r.events}", fmt(r.throughput), fmt(r.p(0.5), 1), fmt(r.p(0.99), 1),
         fmt(r.p(1.0), 1), fmt(r.cpu_per_1k, 3), fmt(r.broker_cpu_per_1k, 3), f"{r.other_cores:.2f} cores",
         fmt(r.produce_seconds, 2)) for r in results
    ]  # fmt: skip
    by_name = {r.name: r for r in results}
    orch = by_name.get(NAMES["orchestrator"])
    for kind in ("faust", "aiokafka"):
        bare = by_name.get(NAMES[kind])
        if orch is not None and bare is not None:
            rows.append((f"ratio orch/{kind}", "", ratio(orch.throughput, bare.throughput),
                         ratio(orch.p(0.5), bare.p(0.5)), ratio(orch.p(0.99), bare.p(0.99)),
                         ratio(orch.p(1.0), bare.p(1.0)), ratio(orch.cpu_per_1k, bare.cpu_per_1k),
                         ratio(orch.broker_cpu_per_1k, bare.broker_cpu_per_1k), "", ""))  # fmt: skip
    print()
    print(env)
    print(f"command: {command}")
    print()
    print_table(head, rows)
    for r in results:
        for note in r.notes:
            print(f"note: {note}")
    print("\nMarkdown:\n")
    print(f"_{env}. Command: `{command}`._\n")
    markdown_table(head, rows)
    readme_row(results, args)


def readme_row(results: list[Result], args: argparse.Namespace) -> None:
    """One combined row for README's end-to-end table (a pipeline not run: empty cells)."""
    by_name = {r.name: r for r in results}
    cells = [f"{dt.datetime.now().astimezone():%Y-%m-%d %H:%M}", machine_short(), args.guarantee, f"{args.events:,}",
             "max" if args.rate <= 0 else f"{args.rate:g}/s"]  # fmt: skip
    for kind in PIPELINES:
        r = by_name.get(NAMES[kind])
        cells += ["", "", "", ""] if r is None else [fmt(r.throughput), f"{fmt(r.p(0.5), 1)} ms",
                                                      f"{fmt(r.p(0.99), 1)} ms", fmt(r.cpu_per_1k, 3)]  # fmt: skip
    orch = by_name.get(NAMES["orchestrator"])
    for kind in ("faust", "aiokafka"):
        bare = by_name.get(NAMES[kind])
        cells.append(f"{ratio(orch.throughput, bare.throughput)}; {ratio(orch.cpu_per_1k, bare.cpu_per_1k)}"
                     if orch is not None and bare is not None else "")  # fmt: skip
    print("\nREADME row (date | machine | guarantee | events | offered rate | orchestrator ev/s | p50 | p99 "
          "| CPU ms/ev | bare faust ev/s | p50 | p99 | CPU ms/ev | bare aiokafka ev/s | p50 | p99 | CPU ms/ev "
          "| orch/faust (throughput; CPU) | orch/aiokafka (throughput; CPU)):\n")  # fmt: skip
    print("| " + " | ".join(cells) + " |")


# ------------------------------------------------------------------------------------------- main


async def run(args: argparse.Namespace, prefix: str, tmp: Path, children: list[Any]) -> list[Result]:
    results = []
    print(f"bench.stream: topics prefixed {prefix}, {args.guarantee}", file=sys.stderr, flush=True)
    for kind in args.pipelines:
        if kind == "orchestrator":
            results.append(await run_orchestrator(args, prefix, tmp, children))
        else:
            results.append(await run_bare(kind, args, prefix, tmp, children))
        stop(children[-1])  # a pipeline must not compete for CPU with the next
    return results


def pipelines(text: str) -> list[str]:
    chosen = [p.strip() for p in text.split(",") if p.strip()]
    unknown = sorted(set(chosen) - set(PIPELINES))
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"choose among {','.join(PIPELINES)} (got {text!r})")
    return chosen


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.stream", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000, help="events per pipeline (default 20000)")
    parser.add_argument("--rate", type=float, default=0, help="events/s to produce; 0 = as fast as possible")
    parser.add_argument("--guarantee", choices=GUARANTEES, default="exactly_once",
                        help="processing_guarantee of the worker and the bare faust app (default exactly_once)")
    parser.add_argument("--customers", type=int, default=1000, help="distinct customer keys (default 1000)")
    parser.add_argument("--pipelines", type=pipelines, default=list(PIPELINES),
                        help=f"which to run, in order (default {','.join(PIPELINES)})")  # fmt: skip
    parser.add_argument("--journeys", type=Path, default=None,
                        help="journeys folder for the worker (default: one action per page_view)")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=300, help="max seconds to wait for all outputs")
    parser.add_argument("--idle-timeout", type=float, default=30, help="give up after this long without an output")
    parser.add_argument("--ready-timeout", type=float, default=120, help="max seconds for start-up and warm-up")
    parser.add_argument("--worker-env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment for the worker (repeatable), e.g. ORCH_LOG_LEVEL=info; "
                             "ORCH_COMMIT_INTERVAL applies to the bare faust app too")  # fmt: skip
    parser.add_argument("--keep-topics", action="store_true", help="do not delete the bench topics and Redis keys")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    command = "python -m bench.stream " + " ".join(sys.argv[1:] if argv is None else argv)
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    args.load_at_start = os.getloadavg()[0]
    children: list[Any] = []
    with tempfile.TemporaryDirectory(prefix="bench-stream-") as tmp:
        try:
            results = asyncio.run(run(args, prefix, Path(tmp), children))
        finally:
            for child in children:
                stop(child)
            clean_up(prefix, args.keep_topics, "bench.stream")
    report(results, args, command.strip())


if __name__ == "__main__":
    main()
