"""`orchestrator send` and `orchestrator tail`: plain aiokafka clients for demos, tests and senders."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable, Iterable

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from orchestrator.contract.events import customer_key
from orchestrator.settings import Settings
from orchestrator.stream.records import INPUT_MAX_MESSAGE_BYTES


def key_of(line: bytes) -> bytes | None:
    """The customer key when the line is an event with ids; None (unkeyed) otherwise: the worker re-keys anyway."""
    try:
        document = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(document, dict):
        return None
    cid, aid = document.get("customer_id"), document.get("anonymous_id")
    if isinstance(cid, str) or isinstance(aid, str):
        return customer_key(cid if isinstance(cid, str) else None, aid if isinstance(aid, str) else None).encode()
    return None


async def send_lines(
    settings: Settings, lines: Iterable[bytes], topic: str, progress: Callable[[int], None] = lambda n: None
) -> int:
    """Produce each non-blank line as one record, keyed by customer; waits until all are acknowledged."""
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers, acks="all", enable_idempotence=True,
        max_request_size=INPUT_MAX_MESSAGE_BYTES, linger_ms=5,
    )  # fmt: skip
    await producer.start()
    sent = 0
    try:
        pending = []
        for line in lines:
            value = line.rstrip(b"\r\n")
            if not value.strip():
                continue
            pending.append(await producer.send(topic, value, key=key_of(value)))
            sent += 1
            if len(pending) >= 1000:
                await asyncio.gather(*pending)
                progress(len(pending))
                pending = []
        await asyncio.gather(*pending)
        progress(len(pending))
    finally:
        await producer.stop()
    return sent


async def tail_actions(
    settings: Settings, channels: Iterable[str], *, from_beginning: bool, idle_timeout: float | None
) -> AsyncIterator[bytes]:
    """Yield action records (read_committed) from `actions.<channel>` topics, or all of them."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False,
        isolation_level="read_committed", auto_offset_reset="earliest" if from_beginning else "latest",
        metadata_max_age_ms=2000,  # notice new actions.<channel> topics quickly
    )  # fmt: skip
    await consumer.start()
    try:
        wanted = sorted({settings.actions_topic(c) for c in channels})
        if wanted:
            consumer.subscribe(topics=wanted)
        else:
            consumer.subscribe(pattern=f"^{re.escape(settings.topic_actions_prefix)}.*")
        last = time.monotonic()
        while idle_timeout is None or time.monotonic() - last < idle_timeout:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for record in records:
                    last = time.monotonic()
                    if record.value is not None:
                        yield record.value
    finally:
        await consumer.stop()


async def partitions_of(bootstrap_servers: str, topic: str) -> set[int]:
    """The topic's partitions (empty when it does not exist)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
        return {p["partition"] for p in described["partitions"]} if described["error_code"] == 0 else set()
    finally:
        await admin.close()


async def read_topic(bootstrap_servers: str, topic: str) -> list[ConsumerRecord]:
    """Every committed record of `topic` from its start to its end now, tombstones included, in partition order."""
    numbers = await partitions_of(bootstrap_servers, topic)
    if not numbers:
        return []
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers, enable_auto_commit=False, isolation_level="read_committed"
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(numbers)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        found: list[ConsumerRecord] = []
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            for records in (await consumer.getmany(*partitions, timeout_ms=500)).values():
                found.extend(records)
        return found
    finally:
        await consumer.stop()
