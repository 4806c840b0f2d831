"""The ingest agent: validate each input record, resolve who the customer is on the Redis identity graph, and
re-key it by customer key onto the internal topic, so producers may key events any way (or not at all).

A merge of anonymous customers into a known one travels as an `Expect` record to the known customer's partition
(hold its records until the merge is in) and a `Handover` record to each anonymous key's partition.
"""

from __future__ import annotations

import logging
from typing import Any

import faust
import orjson

from orchestrator.engine.identity import conflict_records, event_identifiers, resolve_event
from orchestrator.serving.redis import Trail
from orchestrator.stream.records import Rejected, accept, encode_event, encode_expect, encode_handover
from orchestrator.stream.shell import INFRASTRUCTURE_ERRORS, INGEST, Shell, crash_on

log = logging.getLogger("orchestrator.worker")


async def ingest_one(shell: Shell, message: Any) -> int | None:
    """The record's event time, or None if it went to the DLQ."""
    result = accept(message.value, shell.settings.max_event_bytes)
    if isinstance(result, Rejected):
        await shell.to_dlq(result.reason, message)
        return None
    serving, topology = shell.serving, shell.topology
    identifiers = event_identifiers(result, shell.identity_secret)
    graph, merged_before = await serving.lookup(identifiers, result.id)
    resolution, resolved = resolve_event(result, identifiers, graph)
    # A replay after a crash finds its links already written: the merges it made are remembered in Redis.
    merges = resolution.merges or merged_before
    await serving.link(resolution.links, graph, result.id, merges)
    conflicts = conflict_records(resolution, resolved.data["occurred_at"])
    for record in conflicts:
        log.warning("identity conflict (not merged): %s", record)
        await topology.audit.send(key=resolved.customer.encode(), value=orjson.dumps(record))
    if conflicts:
        await serving.record(resolved.customer, Trail(0, [(resolved.ts, record) for record in conflicts]))
    if not merges:
        await topology.customers.send(key=resolved.customer.encode(), value=encode_event(resolved))
        return resolved.ts
    # The anonymous state lives on another partition: it hands itself over, then the event runs. Meanwhile
    # the known customer holds its records, so its later events run after the merge.
    expect = encode_expect(resolved.customer, merges, resolved.ts)
    await topology.customers.send(key=resolved.customer.encode(), value=expect)
    for number, anonymous in enumerate(merges):
        carried = resolved if number == len(merges) - 1 else None
        await topology.customers.send(
            key=anonymous.encode(), value=encode_handover(anonymous, resolved.customer, resolved.ts, carried)
        )
    return resolved.ts


async def run(shell: Shell, stream: faust.StreamT[bytes]) -> None:
    """Validate, resolve who the customer is (Redis graph), re-key onto the customer's partition."""
    app = shell.app
    async for event in stream.events():
        if not await app.in_order(event.message):
            continue
        async with app.processing(event), crash_on(INFRASTRUCTURE_ERRORS):
            ts = await ingest_one(shell, event.message)
        shell.progress.processed(event.message.partition, event.message.offset, ts)
        shell.done(INGEST, event.message)
