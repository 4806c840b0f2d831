"""Topics and the journey archive, set up before the Faust app starts (aiokafka admin and clients)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import yaml
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from orchestrator.contract.journeys import Journey
from orchestrator.settings import Settings
from orchestrator.stream.client import read_topic
from orchestrator.stream.records import INPUT_MAX_MESSAGE_BYTES, MAX_RECORD_BYTES

_TOPIC_EXISTS = 36


class ArchiveConflict(RuntimeError):
    """A journey's content changed under the same version: runs in flight would change journey mid-way."""


def wanted_topics(settings: Settings, channels: Iterable[str]) -> list[NewTopic]:
    """The topics this worker reads and writes (Faust creates the tables' changelogs itself)."""
    partitions, replication = settings.topic_partitions, settings.topic_replication
    large = {"max.message.bytes": str(INPUT_MAX_MESSAGE_BYTES)}
    written = {"max.message.bytes": str(MAX_RECORD_BYTES)}  # records the worker writes (see records.py)
    return [
        NewTopic(settings.topic_touchpoints, partitions, replication, topic_configs=large),
        NewTopic(settings.topic_dlq, partitions, replication, topic_configs=written),
        NewTopic(settings.topic_audit, partitions, replication, topic_configs=written),
        NewTopic(settings.topic_customers, partitions, replication, topic_configs=written),
        NewTopic(settings.topic_journeys, 1, settings.topic_replication, topic_configs={"cleanup.policy": "compact"}),
        NewTopic(settings.topic_baskets, 1, replication, topic_configs={**written, "retention.ms": "-1"}),
        *(NewTopic(settings.actions_topic(c), partitions, replication, topic_configs=written)
          for c in sorted(set(channels))),
    ]  # fmt: skip


async def ensure_topics(settings: Settings, channels: Iterable[str]) -> None:
    """Create the topics this worker reads and writes, where missing (partitions and replication from settings)."""
    wanted = wanted_topics(settings, channels)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t.name not in existing]
        if missing:
            response = await admin.create_topics(missing)
            for name, code, *rest in response.topic_errors:
                if code not in (0, _TOPIC_EXISTS):
                    raise RuntimeError(f"cannot create topic {name}: error {code} {rest}")
            await _until_led(admin, [t.name for t in missing])
    finally:
        await admin.close()


async def _until_led(admin: AIOKafkaAdminClient, topics: list[str], timeout: float = 30.0) -> None:
    """A new topic's partitions need a leader before anyone can read offsets from them."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        described = await admin.describe_topics(topics)
        if all(t["error_code"] == 0 and t["partitions"] and all(p["leader"] >= 0 for p in t["partitions"])
               for t in described):  # fmt: skip
            return
        if asyncio.get_running_loop().time() > deadline:
            raise RuntimeError(f"topics {topics} have no leader after {timeout:.0f} s")
        await asyncio.sleep(0.2)


async def _read_archive(settings: Settings) -> dict[str, dict[str, Any]]:
    """`id@version` -> its archive record: `{"source": YAML text, "deployed_at": ms}` (older records: no time)."""
    archive: dict[str, dict[str, Any]] = {}
    for message in await read_topic(settings.kafka_bootstrap_servers, settings.topic_journeys):
        if message.key is None:
            continue
        if message.value is None:
            archive.pop(message.key.decode(), None)
        else:
            archive[message.key.decode()] = orjson.loads(message.value)
    return archive


@dataclass(frozen=True)
class Archived:
    retired: list[Journey]  # versions not deployed now that runs in flight may still need
    deployed: dict[str, int]  # journey id -> when its current version was first deployed (epoch ms)


async def sync_archive(settings: Settings, journeys: Sequence[Journey], sources: dict[str, str]) -> Archived:
    """Record the journeys being deployed (with the time a version is first seen: a scheduled journey plans the
    customers stored before it as of then, engine/broadcast.py); return the retired versions and those times.

    `sources` maps `id@version` to the YAML text of that journey.
    """
    archive = await _read_archive(settings)
    current = {f"{j.id}@{j.version}": j for j in journeys}
    for key, journey in current.items():
        if key in archive and Journey.model_validate(yaml.safe_load(archive[key]["source"])) != journey:
            raise ArchiveConflict(
                f"journey {journey.id!r} version {journey.version} differs from the one already deployed "
                f"under that version: give it `version: {journey.version + 1}` so runs in flight finish on theirs"
            )
    now = int(time.time() * 1000)
    new = {key: {"source": sources[key], "deployed_at": now} for key in current if key not in archive}
    if new:
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
        await producer.start()
        try:
            await asyncio.gather(*(
                producer.send_and_wait(settings.topic_journeys, orjson.dumps(record), key=key.encode())
                for key, record in new.items()
            ))  # fmt: skip
        finally:
            await producer.stop()
    archive.update(new)
    latest: dict[str, Journey] = {}
    for journey in journeys:
        if journey.id not in latest or journey.version > latest[journey.id].version:
            latest[journey.id] = journey
    deployed = {jid: archive[f"{jid}@{j.version}"]["deployed_at"] for jid, j in latest.items()
                if "deployed_at" in archive[f"{jid}@{j.version}"]}  # fmt: skip
    retired = [Journey.model_validate(yaml.safe_load(record["source"])) for key, record in archive.items()
               if key not in current]  # fmt: skip
    return Archived(retired, deployed)
