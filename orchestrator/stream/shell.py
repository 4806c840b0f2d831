"""What the agents share: the app, its topology, the engine, Redis, metrics and the timer index.

Built once by `stream/app.py`; the agents (`stream/ingest.py`, `stream/customer.py`) and the loops
(`stream/loops.py`) are module-level functions of a `Shell`, so each can be read and tested on its own.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiokafka.errors import KafkaError
from faust.exceptions import ProducerSendError
from faust.types import TP

from orchestrator.engine import Engine
from orchestrator.serving.history import History
from orchestrator.serving.redis import Serving
from orchestrator.settings import Settings
from orchestrator.stream.batching import Staged, Tables
from orchestrator.stream.eos import OrchestratorApp
from orchestrator.stream.gate import stop_now
from orchestrator.stream.holding import Holding
from orchestrator.stream.intake import Intake
from orchestrator.stream.learning import Learning
from orchestrator.stream.metrics import Metrics
from orchestrator.stream.parking import Parking
from orchestrator.stream.records import dlq_record
from orchestrator.stream.states import States
from orchestrator.stream.timers import TimerIndex
from orchestrator.stream.topology import Partitions, Topology
from orchestrator.stream.watermark import IngestProgress, Watermarks

log = logging.getLogger("orchestrator.worker")
# Failures of the infrastructure, not of the record: they never send a record to the DLQ.
INFRASTRUCTURE_ERRORS: tuple[type[BaseException], ...] = (KafkaError, ProducerSendError)
INGEST, CUSTOMER = "ingest", "customer"  # the agents, as metrics label them


@dataclass(frozen=True, slots=True)
class Shell:
    app: OrchestratorApp
    settings: Settings
    engine: Engine
    topology: Topology
    partitions: Partitions
    serving: Serving
    metrics: Metrics
    index: TimerIndex  # due times of the owned partitions' pending timers (durable copy: the timers table)
    history: History  # the identity facts and the ingest claims, shared by every worker (Redis)
    intake: Intake  # input records waiting for the input watermark
    releasing: dict[TP, asyncio.Lock]  # one release at a time per input partition (the agent's and the tick's)
    progress: IngestProgress  # ingest side: how far each owned input partition is released and committed
    watermarks: Watermarks  # customer side: the newest mark of each input partition, per customers partition
    holding: Holding  # records waiting for the watermark
    states: States  # the customer agent's recently stepped states, decoded
    tables: Tables  # the customer agent's tables, through the current batch's writes
    handed: Staged  # ingest's view of the `held` table: the records it hands over in one hop (stream/ingest.py)
    parking: Parking
    learning: Learning  # the complementary-products model, as every customers partition has sealed it
    identity_secret: bytes
    timer_rounds: dict[int, float] = field(default_factory=dict)  # customers partition -> last round of timers
    # customers partition -> (journey, occurrence) -> its end: broadcasts to record when complete (stream/occurrences)
    occurrences: dict[int, dict[tuple[str, str], int]] = field(default_factory=dict)

    async def to_dlq(self, reason: str, message: Any, offset: int | None = None, value: bytes | None = None) -> None:
        """`message` to the DLQ, or (a record released from holding) its `value` read at `offset` of its topic."""
        offset = message.offset if offset is None else offset
        log.info("to DLQ: %s (%s[%s]@%s)", reason, message.topic, message.partition, offset)
        self.metrics.dlq.inc()
        await self.topology.dlq.send(
            key=message.key if value is None else None,
            value=dlq_record(reason, topic=message.topic, partition=message.partition, offset=offset,
                             timestamp_ms=None if value is not None else message.timestamp
                             and int(message.timestamp * 1000),
                             key=message.key if value is None else None,
                             value=message.value if value is None else value),
        )  # fmt: skip

    def done(self, agent: str, message: Any) -> None:
        self.metrics.events.labels(agent, "processed").inc()
        if message.timestamp:
            self.metrics.latency.labels(agent).observe(max(0.0, time.time() - message.timestamp))


@asynccontextmanager
async def crash_on(errors: tuple[type[BaseException], ...]) -> AsyncIterator[None]:
    """Kafka failing mid-event: the event's records may be half sent, and faust would acknowledge it anyway
    and restart the agent past it. Stop at once instead: the open transactions abort, a restart reprocesses."""
    try:
        yield
    except errors as exc:
        stop_now(f"Kafka failed while processing an event: {exc!r}")
