"""Burst benchmark: a 10x burst over the sustained rate must not grow the worker's memory without bound or lose events.

    python -m bench.burst [--rate 100] [--burst-factor 10] [--sustain 20] [--burst 10] [--after 20] [--json FILE]

One `orchestrator worker` runs as a subprocess (ORCH_STORE=memory://, fresh app id and topics of 4 partitions,
a journey that sends one `web` action per page_view: the set-up of bench/stream.py, whose helpers this reuses)
on the broker of ORCH_KAFKA_BOOTSTRAP_SERVERS. After a warm-up, a load generator in its own process sends keyed
events in three phases without a pause: `--rate` R events/s for `--sustain` s, then R x `--burst-factor` for
`--burst` s, then R again for `--after` s. Actions are read back with isolation_level=read_committed and matched
to events by event_id; latency = action received - event created (time.time_ns(), same machine).

Every `--interval` s (0.5) it samples the worker's RSS (VmRSS of its process tree, from /proc) and CPU, and the
consumer lag of the worker's group: end offset (read_committed) minus committed offset, on the input topic and on
the internal `<app>.customers` topic (events re-keyed by ingest, waiting for the customer agent).

It reports events sent, outputs received, missing, duplicates, peak RSS and latency per phase, the maximum lag,
and how long the backlog took to drain after the burst; prints RSS and lag over time as sparklines and writes
every figure (and the samples) as JSON with --json. A benchmark: it asserts nothing, but says plainly whether
any event was lost or doubled. Faust settings can be tried through the environment Faust reads itself, e.g.
`--worker-env BROKER_MAX_POLL_RECORDS=500` (docs/overload.md).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import datetime as dt
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bench.common import (
    CLK_TCK,
    PARTITIONS,
    ROOT,
    bootstrap_servers,
    clean_up,
    cpu_seconds,
    fmt,
    kafka_pid,
    kafka_version,
    machine_ticks,
    own_cpu_seconds,
    percentile,
    start_worker,
    stop,
    tail,
    wait_for_topics,
    worker_env,
    worker_problems,
)
from bench.machine import cpu_model
from bench.traffic import BENCH_JOURNEY, BENCH_POLICY, CHANNEL, WARMUP_EVENTS, Collector, event_bytes

PHASES = ("idle", "sustain", "burst", "after", "drain")
SPARKS = "▁▂▃▄▅▆▇█"


# ------------------------------------------------------------------------------------------ load


@dataclass
class Phase:
    """One constant-rate stretch of the load; times are filled in by the load generator (time.time_ns())."""

    name: str
    rate: float
    seconds: float
    sent: int = 0
    start_ns: int = 0
    end_ns: int = 0

    @property
    def events(self) -> int:
        return round(self.rate * self.seconds)


def event_id(tag: str, phase: str, n: int) -> str:
    return f"{tag}-{phase}-{n}"


async def produce_phases(topic: str, tag: str, phases: list[Phase], customers: int) -> list[Phase]:
    """Send each phase's events paced at its rate, one producer, no pause between phases; wait for the acks.

    Pacing is by schedule (event n of a phase is due at start + n / rate), so a generator that fell behind
    catches up rather than silently lowering the rate; the report shows the rate achieved."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers(), acks="all", enable_idempotence=True,
                                linger_ms=5)  # fmt: skip
    await producer.start()
    try:
        futures = []
        count = 0
        for phase in phases:
            phase.start_ns = time.time_ns()
            start = time.perf_counter()
            for n in range(phase.events):
                ahead = start + n / phase.rate - time.perf_counter()
                if ahead > 0:
                    await asyncio.sleep(ahead)
                customer = f"bench-c{count % customers}"
                count += 1
                value = event_bytes(event_id(tag, phase.name, n), customer)
                futures.append(await producer.send(topic, value, key=customer.encode()))
            # the phase lasts its scheduled time even if its last event went out early
            ahead = start + phase.seconds - time.perf_counter()
            if ahead > 0:
                await asyncio.sleep(ahead)
            phase.sent, phase.end_ns = phase.events, time.time_ns()
        await asyncio.gather(*futures)
        return phases
    finally:
        await producer.stop()


async def produce_in_child(topic: str, tag: str, phases: list[Phase], customers: int) -> list[Phase]:
    """The load generator runs in its own process, so it never delays the collector's receive times."""
    spec = orjson.dumps([asdict(p) for p in phases]).decode()
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.burst", "--produce-child", topic, tag, spec, str(customers),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await child.communicate()
    if child.returncode != 0:
        raise RuntimeError(f"load generator exited with {child.returncode}")
    return [Phase(**p) for p in orjson.loads(out.splitlines()[-1])]


# -------------------------------------------------------------------------------------- sampling


def process_tree(pid: int) -> list[int]:
    """The pid and all its descendants (from /proc/<pid>/task/*/children)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                todo.extend(int(child) for child in task.read_text().split())
    return found


def rss_kib(pid: int) -> int:
    """VmRSS of a process tree in KiB (0 when gone): what the kernel holds in RAM for the worker."""
    total = 0
    for member in process_tree(pid):
        with contextlib.suppress(OSError, ValueError, IndexError):
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
                    break
    return total


def total_memory_gib() -> float:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024**2
    return math.nan


@dataclass
class Sample:
    t_ns: int
    rss_kib: int
    cpu_s: float  # worker tree CPU seconds since start
    input_lag: int  # input topic: end offset - group's committed offset, summed over partitions
    internal_lag: int  # <app>.customers, same (end offset = last stable offset: counts transaction markers)
    phase: str = ""
    backlog: int = 0  # events created by then whose action (it arrived later) was not received yet; set at the end

    @property
    def lag(self) -> int:
        return self.input_lag + self.internal_lag


class Sampler:
    """Samples the worker's RSS, CPU and its group's lag every `interval` s, in the background."""

    def __init__(self, pid: int, group: str, topics: Sequence[str], interval: float) -> None:
        self.pid, self.group, self.interval = pid, group, interval
        self.tps = [TopicPartition(t, p) for t in topics for p in range(PARTITIONS)]
        self.input_topic = topics[0]
        self.admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers())
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers(), enable_auto_commit=False,
                                         isolation_level="read_committed")  # fmt: skip
        self.samples: list[Sample] = []
        self.errors = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.admin.start()
        await self.consumer.start()
        self._task = asyncio.create_task(self._run())

    async def lag(self) -> tuple[int, int]:
        committed = await self.admin.list_consumer_group_offsets(self.group, partitions=self.tps)
        ends = await self.consumer.end_offsets(self.tps)
        lags = {self.input_topic: 0}
        for tp in self.tps:
            done = committed.get(tp)
            offset = done.offset if done is not None and done.offset >= 0 else 0
            lags[tp.topic] = lags.get(tp.topic, 0) + max(0, ends[tp] - offset)
        internal = sum(v for k, v in lags.items() if k != self.input_topic)
        return lags[self.input_topic], internal

    async def _run(self) -> None:
        start = time.monotonic()
        tick = 0
        while True:
            t_ns, rss, cpu = time.time_ns(), rss_kib(self.pid), sum(cpu_seconds(p) for p in process_tree(self.pid))
            try:
                input_lag, internal_lag = await asyncio.wait_for(self.lag(), timeout=self.interval * 4)
            except Exception:  # a slow or failed probe: keep the RSS, mark the lag unknown
                self.errors += 1
                input_lag = internal_lag = -1
            self.samples.append(Sample(t_ns, rss, cpu, input_lag, internal_lag))
            tick = max(tick + 1, math.ceil((time.monotonic() - start) / self.interval))  # skip ticks, never bunch
            await asyncio.sleep(max(0.0, start + tick * self.interval - time.monotonic()))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.consumer.stop()
        await self.admin.close()


# -------------------------------------------------------------------------------------- the run


@dataclass
class PhaseFigures:
    name: str
    seconds: float = math.nan
    sent: int = 0
    offered_rate: float = math.nan
    achieved_rate: float = math.nan  # events sent / phase duration, as the load generator managed
    received: int = 0
    missing: int = 0
    p50_ms: float = math.nan
    p99_ms: float = math.nan
    max_ms: float = math.nan
    peak_rss_mib: float = math.nan
    max_lag: int = -1
    max_backlog: int = 0
    worker_cores: float = math.nan  # average CPU of the worker's process tree over the phase


@dataclass
class Figures:
    command: str
    date: str
    machine: str
    worker_env: list[str]
    sent: int = 0
    received: int = 0
    missing: int = 0
    duplicates: int = 0
    unexpected: int = 0
    baseline_rss_mib: float = math.nan
    peak_rss_mib: float = math.nan
    final_rss_mib: float = math.nan
    max_input_lag: int = -1
    max_internal_lag: int = -1
    max_lag: int = -1
    max_backlog: int = 0
    burst_drained_s: float = math.nan  # burst end -> the last burst event's action received
    backlog_recovered_s: float = math.nan  # burst end -> unanswered events back to the sustained phase's maximum
    backlog_threshold: int = 0
    lag_recovered_s: float = math.nan  # burst end -> committed-offset lag back to the sustained phase's maximum
    lag_threshold: int = -1
    load_at_start: float = math.nan  # 1-min load average
    machine_cores: float = math.nan  # cores busy on the whole machine while sampling
    worker_cores: float = math.nan  # of them: the worker's process tree
    broker_cores: float = math.nan  # the local broker (scripts/services)
    bench_cores: float = math.nan  # this process and its load generator
    other_cores: float = math.nan  # everything else (Redis, other work on the machine)
    phases: list[PhaseFigures] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        if not self.missing and not self.duplicates:
            return f"NOTHING LOST, NOTHING DOUBLED: {self.received}/{self.sent} actions, each once"
        return (f"LOST {self.missing} of {self.sent} events (no action), "
                f"DOUBLED {self.duplicates} (action received more than once)")  # fmt: skip


def phase_of(t_ns: int, phases: Sequence[Phase]) -> str:
    if t_ns < phases[0].start_ns:
        return "idle"
    for phase in phases:
        if t_ns < phase.end_ns:
            return phase.name
    return "drain"


def mib(kib: float) -> float:
    return kib / 1024


def summarize(
    args: argparse.Namespace, command: str, tag: str, phases: list[Phase], collector: Collector, samples: list[Sample]
) -> Figures:
    figures = Figures(command=command, date=dt.datetime.now().astimezone().isoformat(timespec="seconds"),
                      machine=machine(), worker_env=list(args.worker_env))  # fmt: skip
    sent_at = sorted(sent for _, sent in collector.arrived.values() if sent is not None)
    received_at = sorted(received for received, sent in collector.arrived.values() if sent is not None)
    for sample in samples:
        sample.phase = phase_of(sample.t_ns, phases)
        sample.backlog = bisect.bisect_right(sent_at, sample.t_ns) - bisect.bisect_right(received_at, sample.t_ns)
    known = [s for s in samples if s.input_lag >= 0]
    by_phase = {name: [s for s in samples if s.phase == name] for name in PHASES}
    for phase in phases:
        ids = [event_id(tag, phase.name, n) for n in range(phase.sent)]
        arrived = [collector.arrived[i] for i in ids if i in collector.arrived]
        latencies = sorted((received - sent) / 1e6 for received, sent in arrived if sent is not None)
        seconds = (phase.end_ns - phase.start_ns) / 1e9
        figures.phases.append(PhaseFigures(
            phase.name, seconds, phase.sent, phase.rate, phase.sent / seconds if seconds > 0 else math.nan,
            len(arrived), phase.sent - len(arrived), percentile(latencies, 0.5), percentile(latencies, 0.99),
            percentile(latencies, 1.0),
        ))  # fmt: skip
        figures.sent += phase.sent
        figures.received += len(arrived)
    figures.missing = figures.sent - figures.received
    figures.duplicates, figures.unexpected = collector.duplicates, collector.unexpected
    for name in PHASES:
        group = by_phase[name]
        if name in ("idle", "drain"):
            span = (group[-1].t_ns - group[0].t_ns) / 1e9 + args.interval if group else 0.0
            figures.phases.append(PhaseFigures(name, seconds=span))
        current = next(p for p in figures.phases if p.name == name)
        if group:
            current.peak_rss_mib = mib(max(s.rss_kib for s in group))
            current.max_lag = max((s.lag for s in group if s.input_lag >= 0), default=-1)
            current.max_backlog = max(s.backlog for s in group)
            if len(group) > 1 and group[-1].t_ns > group[0].t_ns:
                current.worker_cores = (group[-1].cpu_s - group[0].cpu_s) / ((group[-1].t_ns - group[0].t_ns) / 1e9)
    figures.phases.sort(key=lambda p: PHASES.index(p.name))
    if samples:
        figures.baseline_rss_mib = mib(by_phase["idle"][-1].rss_kib if by_phase["idle"] else samples[0].rss_kib)
        figures.peak_rss_mib = mib(max(s.rss_kib for s in samples))
        figures.final_rss_mib = mib(samples[-1].rss_kib)
    if known:
        figures.max_input_lag = max(s.input_lag for s in known)
        figures.max_internal_lag = max(s.internal_lag for s in known)
        figures.max_lag = max(s.lag for s in known)
    burst = next((p for p in phases if p.name == "burst"), None)
    if burst is not None:
        ids = [event_id(tag, "burst", n) for n in range(burst.sent)]
        if all(i in collector.arrived for i in ids):
            figures.burst_drained_s = (max(collector.arrived[i][0] for i in ids) - burst.end_ns) / 1e9
        figures.lag_threshold = lag_threshold(samples, phases)
        back = [s for s in known if s.t_ns >= burst.end_ns and s.lag <= figures.lag_threshold]
        if back:
            figures.lag_recovered_s = (back[0].t_ns - burst.end_ns) / 1e9
        figures.backlog_threshold = max((s.backlog for s in by_phase["sustain"]), default=0)
        back = [s for s in samples if s.t_ns >= burst.end_ns and s.backlog <= figures.backlog_threshold]
        if back:
            figures.backlog_recovered_s = (back[0].t_ns - burst.end_ns) / 1e9
    figures.max_backlog = max((s.backlog for s in samples), default=0)
    figures.samples = [asdict(s) for s in samples]
    return figures


def lag_threshold(samples: Sequence[Sample], phases: Sequence[Phase]) -> int:
    """The highest lag of the sustained phase: the lag is "back to normal" at or below it."""
    sustain = next(p for p in phases if p.name == "sustain")
    return max((s.lag for s in samples if sustain.start_ns <= s.t_ns < sustain.end_ns and s.input_lag >= 0), default=0)


async def settle(sampler: Sampler, phases: Sequence[Phase], timeout: float) -> bool:
    """After the last action: sample on until the committed-offset lag is back to its sustained level."""
    threshold = lag_threshold(sampler.samples, phases)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sampler.samples and 0 <= sampler.samples[-1].lag <= threshold:
            return True
        await asyncio.sleep(sampler.interval)
    return False


def machine() -> str:
    return (f"CPU {cpu_model()}, {os.cpu_count()} cores, {total_memory_gib():.0f} GiB; "
            f"Python {platform.python_version()}; Kafka {kafka_version()} single broker ({bootstrap_servers()}); "
            f"{PARTITIONS} partitions")  # fmt: skip


def cpu_snapshot(pid: int) -> tuple[float, float, float, int, int, float]:
    """(time, worker CPU s, broker CPU s, machine busy ticks, machine total ticks, own CPU s)."""
    broker = kafka_pid()
    busy, total = machine_ticks()
    return (time.monotonic(), sum(cpu_seconds(p) for p in process_tree(pid)),
            cpu_seconds(broker) if broker else math.nan, busy, total, own_cpu_seconds())  # fmt: skip


def cpu_usage(start: tuple[float, float, float, int, int, float], pid: int) -> tuple[float, ...]:
    """Cores used since `start`: machine, worker, broker, this bench, everything else."""
    end = cpu_snapshot(pid)
    wall = end[0] - start[0]
    machine_cores = (end[3] - start[3]) / CLK_TCK / wall
    worker, broker, bench = (end[1] - start[1]) / wall, (end[2] - start[2]) / wall, (end[5] - start[5]) / wall
    known = worker + (0 if math.isnan(broker) else broker) + bench
    return machine_cores, worker, broker, bench, machine_cores - known


async def launch_worker(args: argparse.Namespace, app_id: str, tmp: Path, children: list[Any]) -> tuple[Any, Path]:
    """`orchestrator worker` with bench/stream.py's journey and environment (memory store, fresh names)."""
    journeys = args.journeys
    if journeys is None:
        journeys = tmp / "journeys"
        journeys.mkdir()
        (journeys / "bench-echo.yaml").write_text(BENCH_JOURNEY)
        (journeys / "policy.yaml").write_text(BENCH_POLICY)
    guarantee = os.environ.get("ORCH_PROCESSING_GUARANTEE", "exactly_once")
    env = worker_env(app_id, tmp / "data", guarantee, args.worker_env)
    log = tmp / "worker.log"
    worker = start_worker(journeys, env, log)
    children.append(worker)
    print(f"bench.burst: worker pid {worker.pid}, app id {app_id}, log {log}", file=sys.stderr, flush=True)
    await wait_for_topics([f"{app_id}.touchpoints", f"{app_id}.actions.{CHANNEL}", f"{app_id}.customers"],
                          worker, log, args.ready_timeout)  # fmt: skip
    return worker, log


async def run(
    args: argparse.Namespace, command: str, prefix: str, tmp: Path, children: list[Any]
) -> tuple[Figures, list[Sample]]:
    app_id = f"{prefix}-orch"
    worker, log = await launch_worker(args, app_id, tmp, children)
    collector = Collector([f"{app_id}.actions.{CHANNEL}"])
    sampler = Sampler(worker.pid, app_id, [f"{app_id}.touchpoints", f"{app_id}.customers"], args.interval)
    await collector.start()
    try:
        warm = [Phase("warm", WARMUP_EVENTS / 0.5, 0.5)]
        await produce_in_child(f"{app_id}.touchpoints", f"{app_id}-w", warm, WARMUP_EVENTS)
        if not await collector.wait_for([event_id(f"{app_id}-w", "warm", n) for n in range(WARMUP_EVENTS)],
                                        timeout=args.ready_timeout):  # fmt: skip
            raise RuntimeError(f"warm-up actions did not arrive in {args.ready_timeout:.0f} s:\n{tail(log)}")
        load_at_start = os.getloadavg()[0]
        start_cpu = cpu_snapshot(worker.pid)
        await sampler.start()
        await asyncio.sleep(2.0)  # idle baseline
        phases = [Phase("sustain", args.rate, args.sustain), Phase("burst", args.rate * args.burst_factor, args.burst),
                  Phase("after", args.rate, args.after)]  # fmt: skip
        total = sum(p.events for p in phases)
        print(
            f"bench.burst: producing {total} events: "
            + ", ".join(f"{p.name} {p.rate:g}/s x {p.seconds:g} s" for p in phases),
            file=sys.stderr,
            flush=True,
        )
        phases = await produce_in_child(f"{app_id}.touchpoints", app_id, phases, args.customers)
        ids = [event_id(app_id, p.name, n) for p in phases for n in range(p.sent)]
        print("bench.burst: load sent, waiting for the backlog to drain ...", file=sys.stderr, flush=True)
        complete = await collector.wait_for(ids, timeout=args.drain_timeout, idle=args.idle_timeout)
        settled = await settle(sampler, phases, args.settle_timeout)
        await asyncio.sleep(2.0)  # late duplicates; the RSS after the drain
        usage = cpu_usage(start_cpu, worker.pid)
    finally:
        await sampler.stop()
        await collector.stop()
    figures = summarize(args, command, app_id, phases, collector, sampler.samples)
    figures.load_at_start = load_at_start
    (figures.machine_cores, figures.worker_cores, figures.broker_cores, figures.bench_cores,
     figures.other_cores) = usage  # fmt: skip
    if figures.other_cores > 0.1:
        figures.notes.append(f"other processes used {figures.other_cores:.2f} cores meanwhile (1-min load "
                             f"{load_at_start:.2f} at start): the figures are disturbed")  # fmt: skip
    if not settled:
        figures.notes.append(f"the committed-offset lag was not back to {figures.lag_threshold} "
                             f"{args.settle_timeout:g} s after the last action")  # fmt: skip
    if not complete:
        figures.notes.append(f"gave up waiting: {figures.received}/{figures.sent} actions arrived")
    if sampler.errors:
        figures.notes.append(f"{sampler.errors} lag probes failed or took over {args.interval * 4:g} s (lag -1)")
    for p in figures.phases:
        if p.name in ("sustain", "burst", "after") and p.achieved_rate < 0.95 * p.offered_rate:
            figures.notes.append(f"{p.name}: the load generator reached {p.achieved_rate:.0f}/s of "
                                 f"{p.offered_rate:g}/s offered")  # fmt: skip
    figures.notes.extend(await worker_problems(f"{app_id}.touchpoints.dlq", log, worker))
    return figures, sampler.samples


# -------------------------------------------------------------------------------------- reporting


def sparkline(values: Sequence[float], width: int) -> str:
    """Values bucketed to `width` columns (max of each bucket), scaled from 0 to the maximum."""
    if not values:
        return ""
    buckets = [max(values[i * len(values) // width:max(i * len(values) // width + 1, (i + 1) * len(values) // width)])
               for i in range(min(width, len(values)))]  # fmt: skip
    top = max(buckets)
    if top <= 0:
        return SPARKS[0] * len(buckets)
    return "".join(SPARKS[min(len(SPARKS) - 1, int(v / top * (len(SPARKS) - 1) + 0.5))] for v in buckets)


def chart(samples: Sequence[Sample], width: int = 100) -> list[str]:
    """RSS and lag over time, one column per bucket of samples, with the phase of each column underneath."""
    if not samples:
        return ["(no samples)"]
    n = min(width, len(samples))
    columns = [samples[i * len(samples) // n] for i in range(n)]
    phases = "".join(s.phase[0] for s in columns)
    rss = [mib(s.rss_kib) for s in samples]
    low = min(rss)
    lag = [max(0, s.input_lag) for s in samples]
    internal = [max(0, s.internal_lag) for s in samples]
    backlog = [s.backlog for s in samples]
    seconds = (samples[-1].t_ns - samples[0].t_ns) / 1e9
    rows = [
        (f"RSS above {low:.0f} MiB (max +{max(rss) - low:.1f})", sparkline([v - low for v in rss], n)),
        (f"input lag (max {max(lag)})", sparkline(lag, n)),
        (f"internal lag (max {max(internal)})", sparkline(internal, n)),
        (f"unanswered events (max {max(backlog)})", sparkline(backlog, n)),
        ("phase", phases),
    ]
    width_ = max(len(label) for label, _ in rows) + 2
    return [f"{seconds:.0f} s, one column = {seconds / n:.2f} s; phases: i=idle s=sustain b=burst a=after d=drain",
            *(label.ljust(width_) + line for label, line in rows)]  # fmt: skip


def report(figures: Figures, samples: Sequence[Sample]) -> None:
    print()
    print(f"{figures.date}; {figures.machine}" + (f"; worker env {' '.join(figures.worker_env)}"
                                                   if figures.worker_env else ""))  # fmt: skip
    print(f"command: {figures.command}")
    print()
    head = ("phase", "seconds", "offered/s", "sent/s", "events", "actions", "missing", "p50 ms", "p99 ms",
            "max ms", "peak RSS MiB", "max lag", "max unanswered", "worker cores")  # fmt: skip
    rows = [(p.name, fmt(p.seconds, 1), fmt(p.offered_rate), fmt(p.achieved_rate), str(p.sent) if p.sent else "",
             str(p.received) if p.sent else "", str(p.missing) if p.sent else "", fmt(p.p50_ms, 1),
             fmt(p.p99_ms, 1), fmt(p.max_ms, 1), fmt(p.peak_rss_mib, 1), str(p.max_lag) if p.max_lag >= 0 else "n/a",
             str(p.max_backlog), fmt(p.worker_cores, 2)) for p in figures.phases]  # fmt: skip
    widths = [max(len(str(row[i])) for row in (head, *rows)) for i in range(len(head))]
    for row in (head, *rows):
        cells = zip(row, widths, strict=True)
        print("  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(cells)))
    print()
    print(f"events sent {figures.sent}, actions received {figures.received}, missing {figures.missing}, "
          f"duplicates {figures.duplicates}, unexpected records {figures.unexpected}")  # fmt: skip
    print(f"RSS: {figures.baseline_rss_mib:.1f} MiB idle, peak {figures.peak_rss_mib:.1f} MiB, "
          f"{figures.final_rss_mib:.1f} MiB at the end")  # fmt: skip
    print(f"max lag (end offset - committed offset): {figures.max_lag} records (input {figures.max_input_lag}, "
          f"internal {figures.max_internal_lag}); max unanswered events: {figures.max_backlog}")  # fmt: skip
    print(f"drain after the burst: last burst action at +{fmt(figures.burst_drained_s, 1)} s; unanswered events "
          f"back to the sustained maximum ({figures.backlog_threshold}) at +{fmt(figures.backlog_recovered_s, 1)} s; "
          f"committed-offset lag back to the sustained maximum ({figures.lag_threshold}) at "
          f"+{fmt(figures.lag_recovered_s, 1)} s")  # fmt: skip
    print(f"CPU while sampling: machine {fmt(figures.machine_cores, 2)} cores busy = worker "
          f"{fmt(figures.worker_cores, 2)} + broker {fmt(figures.broker_cores, 2)} + bench "
          f"{fmt(figures.bench_cores, 2)} + other {fmt(figures.other_cores, 2)}; 1-min load at start "
          f"{fmt(figures.load_at_start, 2)}")  # fmt: skip
    print()
    for line in chart(samples):
        print(line)
    print()
    for note in figures.notes:
        print(f"note: {note}")
    print(f"RESULT: {figures.verdict}")


# ------------------------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.burst", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=100, help="sustained events/s (default 100)")
    parser.add_argument("--burst-factor", type=float, default=10, help="burst rate = rate x this (default 10)")
    parser.add_argument("--sustain", type=float, default=20, help="seconds at the rate before the burst (default 20)")
    parser.add_argument("--burst", type=float, default=10, help="seconds of burst (default 10)")
    parser.add_argument("--after", type=float, default=20, help="seconds at the rate after the burst (default 20)")
    parser.add_argument("--customers", type=int, default=1000, help="distinct customer keys (default 1000)")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between RSS/lag samples (default 0.5)")
    parser.add_argument("--json", type=Path, default=None, help="write the figures and samples as JSON here")
    parser.add_argument("--journeys", type=Path, default=None,
                        help="journeys folder for the worker (default: one action per page_view)")  # fmt: skip
    parser.add_argument("--drain-timeout", type=float, default=120,
                        help="max seconds to wait for the actions once the load is sent (default 120)")  # fmt: skip
    parser.add_argument("--idle-timeout", type=float, default=30, help="give up after this long without an action")
    parser.add_argument("--settle-timeout", type=float, default=30,
                        help="after the last action, sample until the lag is back to normal, max seconds")  # fmt: skip
    parser.add_argument("--ready-timeout", type=float, default=120, help="max seconds for start-up and warm-up")
    parser.add_argument("--worker-env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra worker environment (repeatable), e.g. STREAM_BUFFER_MAXSIZE=1024")  # fmt: skip
    parser.add_argument("--keep-topics", action="store_true", help="do not delete the bench topics at the end")
    parser.add_argument("--produce-child", nargs=4, metavar=("TOPIC", "TAG", "PHASES", "CUSTOMERS"),
                        help=argparse.SUPPRESS)  # fmt: skip
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.burst_factor <= 0 or args.interval <= 0:
        parser.error("--rate, --burst-factor and --interval must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.produce_child:
        topic, tag, spec, customers = args.produce_child
        phases = asyncio.run(produce_phases(topic, tag, [Phase(**p) for p in orjson.loads(spec)], int(customers)))
        print(orjson.dumps([asdict(p) for p in phases]).decode())
        return
    command = "python -m bench.burst " + " ".join(sys.argv[1:] if argv is None else argv)
    prefix = f"burst-{uuid.uuid4().hex[:8]}"
    children: list[subprocess.Popen[bytes]] = []
    print(f"bench.burst: topics prefixed {prefix}", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-burst-") as tmp:
        try:
            figures, samples = asyncio.run(run(args, command.strip(), prefix, Path(tmp), children))
        finally:
            for child in children:
                stop(child)
            clean_up(prefix, args.keep_topics, "bench.burst")
    report(figures, samples)
    if args.json is not None:
        args.json.write_bytes(orjson.dumps(asdict(figures), option=orjson.OPT_INDENT_2))
        print(f"figures written to {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
