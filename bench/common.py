"""Helpers shared by the end-to-end benchmarks (bench/stream.py, bench/realistic.py, bench/burst.py): the broker and
its topics, processes started and stopped by the bench, CPU time read from /proc, an `orchestrator worker` with
fresh names, and the report's formatting."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import math
import os
import platform
import re
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.machine import cpu_model

ROOT = Path(__file__).resolve().parent.parent
PARTITIONS = 4
CLK_TCK = os.sysconf("SC_CLK_TCK")
GUARANTEES = ("exactly_once", "at_least_once")


# ------------------------------------------------------------------------------------- the machine


def bootstrap_servers() -> str:
    return os.environ.get("ORCH_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")


def redis_url() -> str:
    return os.environ.get("ORCH_REDIS_URL", "redis://127.0.0.1:6379/0")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def own_cpu_seconds() -> float:
    """CPU time of this process and its waited-for children (the load generator)."""
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of all cores since boot, from /proc/stat."""
    with contextlib.suppress(OSError):
        ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(ticks) - ticks[3] - ticks[4], sum(ticks)  # minus idle and iowait
    return 0, 0


def services_status() -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        return subprocess.run([str(ROOT / "scripts" / "services"), "status"], capture_output=True, text=True,
                              timeout=30).stdout  # fmt: skip
    return ""


def kafka_version() -> str:
    found = re.search(r"kafka:.*version ([0-9][0-9.]*)", services_status())
    return found.group(1) if found else "4.1.0"


def kafka_pid() -> int | None:
    """The local broker's pid (from `scripts/services status`), to read its CPU time; None if remote/unknown."""
    found = re.search(r"kafka: up \(pid ([0-9]+)", services_status())
    return int(found.group(1)) if found else None


def machine_line(load_at_start: float) -> str:
    """Date, CPU, cores, load, Python and Kafka: the first line of every report."""
    return (f"{dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}; CPU {cpu_model()}, {os.cpu_count()} cores "
            f"(1-min load {load_at_start:.2f} at start); Python {platform.python_version()}; "
            f"Kafka {kafka_version()} (single broker, {bootstrap_servers()}); {PARTITIONS} partitions")  # fmt: skip


def machine_short() -> str:
    """The README tables' `machine` column."""
    model = " ".join(cpu_model().split()[:2])
    return f"{os.cpu_count()} cores {model}, Kafka {kafka_version()} single broker"


@dataclass
class Usage:
    """CPU used over an interval: by the measured process, the local broker, and everything else."""

    seconds: float  # wall clock
    cpu: float  # the measured process (user + system), s
    broker_cpu: float  # the local Kafka broker, s (nan when it is not local)
    machine_busy: float  # share of all cores busy
    other_cores: float  # cores used by processes other than the measured one, the broker and this bench


class Meter:
    """Snapshot at creation; `read()` gives the usage since then. `pid` (and `others`) are the measured processes."""

    def __init__(self, pid: int, *others: int) -> None:
        self.pids, self.broker = (pid, *others), kafka_pid()
        self.cpu0, self.broker0 = self.cpu(), cpu_seconds(self.broker) if self.broker else math.nan
        self.busy0, self.total0 = machine_ticks()
        self.own0, self.wall0 = own_cpu_seconds(), time.monotonic()

    def cpu(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids)

    def read(self) -> Usage:
        cpu = self.cpu() - self.cpu0
        broker = cpu_seconds(self.broker) - self.broker0 if self.broker else math.nan
        busy, total = machine_ticks()
        wall = time.monotonic() - self.wall0
        known = cpu + (0 if math.isnan(broker) else broker) + own_cpu_seconds() - self.own0
        share = (busy - self.busy0) / (total - self.total0) if total > self.total0 else math.nan
        other = ((busy - self.busy0) / CLK_TCK - known) / wall if wall > 0 else math.nan
        return Usage(wall, cpu, broker, share, other)


def percentile(ordered: Sequence[float], q: float) -> float:
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


# ----------------------------------------------------------------------------------- Kafka, Redis


async def create_topics(names: Sequence[str], partitions: int = PARTITIONS) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers())
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1) for name in names])
    finally:
        await admin.close()


async def wait_for_topics(names: Sequence[str], process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    """Until every topic exists with leaders (the worker creates its own), or the process dies."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers())
    await admin.start()
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"process exited with {process.returncode}:\n{tail(log)}")
            if set(names) <= set(await admin.list_topics()):
                described = await admin.describe_topics(list(names))
                if all(t["error_code"] == 0 and t["partitions"] and all(p["leader"] >= 0 for p in t["partitions"])
                       for t in described):  # fmt: skip
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"topics {names} not there after {timeout:.0f} s:\n{tail(log)}")
            await asyncio.sleep(0.2)
    finally:
        await admin.close()


async def delete_topics(prefix: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers())
    await admin.start()
    try:
        names = sorted(t for t in await admin.list_topics() if t.startswith(prefix))
        if names:
            await admin.delete_topics(names)
        return names
    finally:
        await admin.close()


async def records_by_topic(prefix: str) -> dict[str, int]:
    """The committed records on each of the run's topics (named after `prefix`), tombstones included: what the
    worker wrote, topic by topic (and the input)."""
    from orchestrator.stream.client import read_topic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers())
    await admin.start()
    try:
        names = sorted(t for t in await admin.list_topics() if t.startswith(prefix))
    finally:
        await admin.close()
    return {name: len(await read_topic(bootstrap_servers(), name)) for name in names}


async def delete_redis_keys(prefix: str) -> int:
    """UNLINK every key under the bench's own prefix (never a shared one: the prefix names this run)."""
    from orchestrator.serving.connect import connect_redis

    client = connect_redis(redis_url())
    dropped, batch = 0, []
    try:
        async for key in client.scan_iter(match=f"{prefix}*", count=1_000):
            batch.append(key)
            if len(batch) >= 1_000:
                dropped += await client.unlink(*batch)
                batch = []
        if batch:
            dropped += await client.unlink(*batch)
    finally:
        await client.aclose()
    return dropped


def clean_up(prefix: str, keep: bool, who: str) -> None:
    """Delete the run's topics and Redis keys (all named after `prefix`), unless asked to keep them."""
    if keep:
        print(f"{who}: kept topics and Redis keys prefixed {prefix}", file=sys.stderr)
        return
    with contextlib.suppress(Exception):
        deleted = asyncio.run(delete_topics(prefix))
        print(f"{who}: deleted {len(deleted)} topics", file=sys.stderr)
    with contextlib.suppress(Exception):
        print(f"{who}: deleted {asyncio.run(delete_redis_keys(prefix + '-'))} Redis keys", file=sys.stderr)


# -------------------------------------------------------------------------------------- processes


def tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def spawn(argv: Sequence[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """A child in its own session (so `stop` reaches its whole group), output appended to `log`."""
    with log.open("ab") as out:
        return subprocess.Popen(list(argv), stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
                                start_new_session=True)  # fmt: skip


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group we started, SIGKILL it if it lingers."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def worker_env(app_id: str, data_dir: Path, guarantee: str, extra: Sequence[str] = ()) -> dict[str, str]:
    """An `orchestrator worker` of its own: every topic, the consumer group and the Redis keys named after
    `app_id` (nothing shared with another worker on the same broker and Redis), memory store, no metrics port."""
    return {
        **os.environ,
        "ORCH_KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers(),
        "ORCH_REDIS_URL": redis_url(),
        "ORCH_APP_ID": app_id,
        "ORCH_TOPIC_TOUCHPOINTS": f"{app_id}.touchpoints",
        "ORCH_TOPIC_DLQ": f"{app_id}.touchpoints.dlq",
        "ORCH_TOPIC_AUDIT": f"{app_id}.journeys.audit",
        "ORCH_TOPIC_ACTIONS_PREFIX": f"{app_id}.actions.",
        "ORCH_TOPIC_PARTITIONS": str(PARTITIONS),
        "ORCH_REDIS_PREFIX": f"{app_id}:",
        "ORCH_STORE": "memory://",
        "ORCH_DATA_DIR": str(data_dir),
        "ORCH_METRICS_PORT": "0",
        "ORCH_LOG_LEVEL": "warning",
        "ORCH_PROCESSING_GUARANTEE": guarantee,
        **dict(item.split("=", 1) for item in extra),
    }


def start_worker(journeys: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return spawn([sys.executable, "-c", "from orchestrator.commands.cli import main; main()", "worker", "--journeys",
                  str(journeys)], log, env)  # fmt: skip


async def wait_for_members(group: str, members: int, timeout: float) -> None:
    """Until the consumer group has `members` members and is stable (its partitions shared out)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers())
    await admin.start()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            described = (await admin.describe_consumer_groups([group]))[0].groups  # raw (error, group, state, ...)
            if described and described[0][2] == "Stable" and len(described[0][5]) == members:
                return
            await asyncio.sleep(0.5)
        raise RuntimeError(f"consumer group {group} did not reach {members} stable members in {timeout:.0f} s")
    finally:
        await admin.close()


async def worker_problems(dlq: str, log: Path, worker: subprocess.Popen[bytes]) -> list[str]:
    """Anything the worker put on its DLQ or logged (at warning level and up), and whether it still runs."""
    notes = []
    consumer = AIOKafkaConsumer(dlq, bootstrap_servers=bootstrap_servers(), auto_offset_reset="earliest",
                                enable_auto_commit=False)  # fmt: skip
    await consumer.start()
    try:
        batch = await consumer.getmany(timeout_ms=1000)
        dead = [r for records in batch.values() for r in records]
        if dead:
            notes.append(f"orchestrator: {len(dead)} DLQ records, first: {dead[0].value[:300]!r}")
    finally:
        await consumer.stop()
    if worker.poll() is not None:
        notes.append(f"orchestrator: worker exited with {worker.returncode}")
    notes.extend(logged_problems("orchestrator", log))
    return notes


def logged_problems(name: str, log: Path) -> list[str]:
    bad = re.compile(r"WARNING|ERROR|CRITICAL|Traceback|Exception|Error:")
    lines = [line.strip() for line in tail(log, 1_000_000).splitlines() if bad.search(line)]
    if lines:
        return [f"{name}: logged {len(lines)} warning/error lines; first: {lines[0][:300]}"]
    return []


# -------------------------------------------------------------------------------------- reporting


def fmt(value: float, digits: int = 0) -> str:
    return "n/a" if math.isnan(value) else f"{value:,.{digits}f}"


def ratio(a: float, b: float) -> str:
    return "n/a" if math.isnan(a) or math.isnan(b) or b == 0 else f"{a / b:.2f}x"


def print_table(head: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Aligned columns for the terminal: the first left, the others right."""
    widths = [max(len(str(row[i])) for row in (head, *rows)) for i in range(len(head))]
    for row in (head, *rows):
        cells = [str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        print("  ".join(cells))


def markdown_table(head: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|")
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")
