"""Every topic and table of the worker, declared once: the app's settings, the topics, the tables and their configs.

Names come from `Settings`: its topic names and `TABLES`; `doctor` and `rebuild-serving` read the same.
Values are our own bytes (orjson of the engine's state and records): faust never guesses a codec.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import faust

from orchestrator.settings import TABLES, Settings
from orchestrator.stream.eos import OrchestratorApp
from orchestrator.stream.records import INPUT_MAX_MESSAGE_BYTES, MAX_RECORD_BYTES

# Each input makes several records (re-key, action, audit, changelogs): let the producer batch them for 5 ms
# instead of one request each (bench/stream.py: about +25 % events/s, a third less broker CPU per event).
PRODUCER_LINGER_S = 0.005


def new_app(settings: Settings) -> OrchestratorApp:
    """The faust app for these settings; nothing is read from globals."""
    return OrchestratorApp(
        settings.app_id,
        broker=[f"kafka://{server}" for server in settings.kafka_bootstrap_servers.split(",")],
        store=settings.store,
        datadir=str(settings.data_dir),
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication,
        processing_guarantee=settings.processing_guarantee,
        consumer_auto_offset_reset="earliest",
        consumer_max_fetch_size=INPUT_MAX_MESSAGE_BYTES + 65_536,  # never below the largest input (docs/overload.md)
        broker_max_poll_records=settings.max_poll_records,
        stream_buffer_maxsize=settings.stream_buffer,
        web_enabled=settings.web_enabled,
        web_port=settings.web_port,
        key_serializer="raw",
        value_serializer="raw",
        producer_linger=PRODUCER_LINGER_S,
        producer_max_request_size=MAX_RECORD_BYTES + 65_536,
        broker_commit_interval=settings.commit_interval,
        broker_session_timeout=settings.session_timeout,
    )


@dataclass(frozen=True, slots=True)
class Partitions:
    """How many partitions the input and the customers topic have, read from the broker at start (restart the
    workers after adding partitions: the watermark waits for every input partition it knows)."""

    touchpoints: int
    customers: int


@dataclass(frozen=True, slots=True)
class Topology:
    touchpoints: faust.TopicT  # input, any key
    dlq: faust.TopicT
    audit: faust.TopicT
    customers: faust.TopicT  # internal, keyed by customer key
    baskets: faust.TopicT  # internal, one partition: what the model learns from (stream/learning.py)
    actions: Mapping[str, faust.TopicT]  # by channel
    customer_table: Any  # customer key -> encoded CustomerState
    timer_table: Any  # stream/timers.timer_key -> encoded timer (the durable copy of the timer index)
    parked_table: Any  # stream/parking.py
    kpi_table: Any  # `<partition>SEP<kpi key>` -> count (orchestrator/measurement/kpis.py), per customers partition
    held_table: Any  # stream/holding.py: records waiting for the watermark


def declare(app: OrchestratorApp, settings: Settings, channels: Iterable[str]) -> Topology:
    def topic(name: str) -> faust.TopicT:
        return app.topic(name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")

    def table(name: str) -> Any:
        configs = {"max.message.bytes": str(MAX_RECORD_BYTES), "min.cleanable.dirty.ratio": "0.1",
                   "segment.ms": str(settings.changelog_segment_seconds * 1000)}  # fmt: skip
        return app.Table(name, default=None, key_type=bytes, value_type=bytes, partitions=settings.topic_partitions,
                         extra_topic_configs=configs)  # fmt: skip

    customers, timers, parked, kpis, held = (table(name) for name in TABLES)
    return Topology(
        touchpoints=topic(settings.topic_touchpoints),
        dlq=topic(settings.topic_dlq),
        audit=topic(settings.topic_audit),
        customers=topic(settings.topic_customers),
        baskets=topic(settings.topic_baskets),
        actions={channel: topic(settings.actions_topic(channel)) for channel in channels},
        customer_table=customers,
        timer_table=timers,
        parked_table=parked,
        kpi_table=kpis,
        held_table=held,
    )
