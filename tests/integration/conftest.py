"""Integration fixtures: the real Kafka and Redis from `scripts/services`, real worker processes.

Every test gets its own app id and topic names, so tests never see each other's records, and its own Redis key
prefix. `stack` runs on the single Redis (`redis_url`); a test module that overrides `redis_url` with
`any_redis_url` runs each of its tests twice: on the single Redis and on the three-node Redis Cluster.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import orjson
import pytest
import redis
import redis.cluster
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from orchestrator.serving.connect import is_cluster_url, parse_cluster_url
from orchestrator.stream.client import key_of, partitions_of, read_topic

ROOT = Path(__file__).parents[2]
JOURNEYS = Path(__file__).parent / "journeys"
SINGLE_REDIS_URL = "redis://127.0.0.1:" + os.environ.get("ORCH_REDIS_PORT", "6379") + "/0"  # scripts/services'


def at(seconds: float, base: datetime | None = None) -> str:
    moment = (base or datetime.now(UTC)) + timedelta(seconds=seconds)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Stack:
    """One test's names and processes on the shared broker."""

    env: dict[str, str]
    tmp: Path
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def bootstrap(self) -> str:
        return self.env["ORCH_KAFKA_BOOTSTRAP_SERVERS"]

    def topic(self, name: str) -> str:
        return {"touchpoints": self.env["ORCH_TOPIC_TOUCHPOINTS"], "dlq": self.env["ORCH_TOPIC_DLQ"]}.get(
            name, f"{self.env['ORCH_APP_ID']}.{name}"
        )

    def actions_topic(self, channel: str) -> str:
        return self.env["ORCH_TOPIC_ACTIONS_PREFIX"] + channel

    def start_worker(self, name: str = "w1", journeys: Path = JOURNEYS, wait: bool = True) -> subprocess.Popen[bytes]:
        env = {**os.environ, **self.env, "ORCH_DATA_DIR": str(self.tmp / f"data-{name}"), "ORCH_LOG_LEVEL": "info"}
        with (self.tmp / f"{name}.log").open("ab") as log:  # the child keeps its own descriptor
            process = subprocess.Popen(
                [sys.executable, "-c", "from orchestrator.commands.cli import main; main()", "worker", "--journeys",
                 str(journeys)],
                stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT, start_new_session=True,
            )  # fmt: skip
        self.workers.append(process)
        if wait:
            self.wait_for_log(name, "timer index rebuilt", count=self.log(name).count("timer index rebuilt") + 1)
        return process

    def log(self, name: str) -> str:
        path = self.tmp / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_for_log(self, name: str, text: str, count: int = 1, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while self.log(name).count(text) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{name} did not log {text!r} in {timeout} s:\n{self.log(name)[-3000:]}")
            time.sleep(0.2)

    def stop(self, process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
        if process.poll() is None:
            os.killpg(process.pid, sig)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)

    def produce(
        self, records: list[bytes | dict[str, Any]], key: bytes | Literal["customer"] | None = "customer"
    ) -> None:
        """Produce to the input topic, keyed by customer key like `orchestrator send` (or by `key`)."""

        async def go() -> None:
            producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, max_request_size=8 * 1024 * 1024)
            await producer.start()
            try:
                for record in records:
                    value = record if isinstance(record, bytes) else orjson.dumps(record)
                    record_key = key_of(value) if key == "customer" else key
                    await producer.send_and_wait(self.topic("touchpoints"), value, key=record_key)
            finally:
                await producer.stop()

        asyncio.run(go())

    def consume(self, topics: list[str], until: int, timeout: float = 60, settle: float = 2.0) -> list[dict[str, Any]]:
        """Read committed records of `topics` from the start until `until` arrived (and `settle` s more); a record
        holding a JSON array (the audit topic: one step's records) counts as its elements."""

        async def go() -> list[dict[str, Any]]:
            consumer = AIOKafkaConsumer(
                *topics, bootstrap_servers=self.bootstrap, auto_offset_reset="earliest", enable_auto_commit=False,
                isolation_level="read_committed", metadata_max_age_ms=1000,
            )  # fmt: skip
            await consumer.start()
            found: list[dict[str, Any]] = []
            try:
                deadline = time.monotonic() + timeout
                settled: float | None = None
                while time.monotonic() < deadline and (settled is None or time.monotonic() < settled):
                    batch = await consumer.getmany(timeout_ms=250)
                    for records in batch.values():
                        for r in records:
                            value = orjson.loads(r.value)
                            found.extend(value if isinstance(value, list) else [value])
                    if settled is None and len(found) >= until:
                        settled = time.monotonic() + settle
            finally:
                await consumer.stop()
            return found

        return asyncio.run(go())

    def committed_and_end(self, topic: str) -> tuple[dict[int, int | None], dict[int, int]]:
        """The worker group's committed offsets of `topic`, per partition, and the partitions' end offsets."""

        async def go() -> tuple[dict[int, int | None], dict[int, int]]:
            consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=self.env["ORCH_APP_ID"],
                                        enable_auto_commit=False, isolation_level="read_committed")  # fmt: skip
            await consumer.start()
            try:
                partitions = [TopicPartition(topic, p) for p in sorted(await partitions_of(self.bootstrap, topic))]
                ends = await consumer.end_offsets(partitions)
                return ({tp.partition: await consumer.committed(tp) for tp in partitions},
                        {tp.partition: ends[tp] for tp in partitions})  # fmt: skip
            finally:
                await consumer.stop()

        return asyncio.run(go())

    def raw_records(self, topic: str) -> list[tuple[bytes, bytes | None]]:
        """(key, value) of every record of `topic` up to its end, tombstones included."""
        return [(key, value) for key, value, _ in self.timed_records(topic)]

    def timed_records(self, topic: str) -> list[tuple[bytes, bytes | None, int]]:
        """(key, value, broker timestamp in ms) of every record of `topic` up to its end."""
        return [(r.key, r.value, r.timestamp) for r in asyncio.run(read_topic(self.bootstrap, topic))]

    def actions(self, channels: list[str], until: int, **kwargs: Any) -> list[dict[str, Any]]:
        return self.consume([self.actions_topic(c) for c in channels], until, **kwargs)


def redis_client(url: str) -> redis.Redis | redis.cluster.RedisCluster:
    """A synchronous client for a test's own reads and writes: the single Redis or the cluster of `url`."""
    if not is_cluster_url(url):
        return redis.Redis.from_url(url)
    address = parse_cluster_url(url)
    nodes = [redis.cluster.ClusterNode(host, port) for host, port in address.nodes]
    return redis.cluster.RedisCluster(startup_nodes=nodes, **address.options)


@pytest.fixture
def redis_url(services: dict[str, str]) -> str:
    """The Redis a test's worker and checks use: the single Redis, unless a module overrides this fixture."""
    return services["ORCH_REDIS_URL"]


@pytest.fixture(params=["single", "cluster"])
def any_redis_url(request: pytest.FixtureRequest) -> str:
    """The single Redis of `scripts/services` (this alone does not need Kafka: tests of Redis only do not start the
    services), then the three-node Redis Cluster (started with `scripts/services cluster up` when it is not up)."""
    if request.param == "single":
        return SINGLE_REDIS_URL
    cluster: str = request.getfixturevalue("redis_cluster")
    return cluster


@pytest.fixture
def stack(services: dict[str, str], redis_url: str, tmp_path: Path) -> Iterator[Stack]:
    name = f"it-{uuid.uuid4().hex[:8]}"
    env = {
        **services,
        "ORCH_REDIS_URL": redis_url,
        "ORCH_APP_ID": name,
        "ORCH_TOPIC_TOUCHPOINTS": f"{name}.touchpoints",
        "ORCH_TOPIC_DLQ": f"{name}.touchpoints.dlq",
        "ORCH_TOPIC_AUDIT": f"{name}.journeys.audit",
        "ORCH_TOPIC_ACTIONS_PREFIX": f"{name}.actions.",
        "ORCH_STORE": "memory://",
        "ORCH_REDIS_PREFIX": f"{name}:",
        "ORCH_TIMER_INTERVAL": "0.1",
    }
    stack = Stack(env, tmp_path)
    yield stack
    for process in stack.workers:
        stack.stop(process, signal.SIGKILL)
    client = redis_client(redis_url)  # this test's keys only (SCAN: on a cluster, every primary)
    try:
        stale = list(client.scan_iter(match=f"{name}:*", count=1000))
        if stale:
            client.delete(*stale)
    except (redis.exceptions.RedisError, redis.exceptions.RedisClusterException):
        pass  # a test that stopped Redis failed: its own failure says why
    finally:
        client.close()
