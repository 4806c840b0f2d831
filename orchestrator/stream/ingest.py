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

from orchestrator.contract.events import Event
from orchestrator.engine.identity import conflict_records, event_identifiers, resolve_event
from orchestrator.engine.outcome import Record
from orchestrator.serving.redis import Trail
from orchestrator.stream.batching import Outbox, batches, send_all, source
from orchestrator.stream.records import Rejected, accept, encode_event, encode_expect, encode_handover
from orchestrator.stream.shell import INFRASTRUCTURE_ERRORS, INGEST, Shell, crash_on

log = logging.getLogger("orchestrator.worker")


async def ingest(shell: Shell, outbox: Outbox, messages: list[Any]) -> list[int | None]:
    """One partition's batch, in order: each record's event time, or None if it went to the DLQ. The graph is
    read once for the whole batch; each event sees the links the batch's earlier events made."""
    accepted: list[tuple[Event, list[str]] | None] = []
    for message in messages:
        result = accept(message.value, shell.settings.max_event_bytes)
        if isinstance(result, Rejected):
            await shell.to_dlq(result.reason, message)
            accepted.append(None)
        else:
            accepted.append((result, event_identifiers(result, shell.identity_secret)))
    serving = shell.serving
    known, merged = await serving.lookup_many([(ids, event.id) for event, ids in filter(None, accepted)])
    times: list[int | None] = []
    for entry in accepted:
        if entry is None:
            times.append(None)
            continue
        event, identifiers = entry
        graph = {i: known[i] for i in identifiers if i in known}
        resolution, resolved = resolve_event(event, identifiers, graph)
        # A replay after a crash finds its links already written: the merges it made are remembered in Redis.
        merges = resolution.merges or merged.get(event.id, [])
        outbox.redis.link(resolution.links, graph, event.id, merges)
        known.update(resolution.links)
        route(shell, outbox, resolved, merges, conflict_records(resolution, resolved.data["occurred_at"]))
        times.append(resolved.ts)
    await serving.write(outbox.redis)  # the links, before the re-keyed records can be read
    return times


def route(shell: Shell, outbox: Outbox, resolved: Event, merges: list[str], conflicts: list[Record]) -> None:
    """The event to its customer's partition (and a merge's records); identity conflicts to the audit."""
    topology, key = shell.topology, resolved.customer.encode()
    if conflicts:
        log.warning("identity conflict (not merged): %s", conflicts)
        outbox.send(topology.audit, key, orjson.dumps(conflicts))
        outbox.redis.trail(resolved.customer, Trail(0, [(resolved.ts, record) for record in conflicts]))
    if not merges:
        outbox.send(topology.customers, key, encode_event(resolved))
        return
    # The anonymous state lives on another partition: it hands itself over, then the event runs. Meanwhile
    # the known customer holds its records, so its later events run after the merge.
    outbox.send(topology.customers, key, encode_expect(resolved.customer, merges, resolved.ts))
    for number, anonymous in enumerate(merges):
        carried = resolved if number == len(merges) - 1 else None
        handover = encode_handover(anonymous, resolved.customer, resolved.ts, carried)
        outbox.send(topology.customers, anonymous.encode(), handover)


async def run(shell: Shell, stream: faust.StreamT[bytes]) -> None:
    """Validate, resolve who the customer is (Redis graph), re-key onto the customer's partition; in batches."""
    app, settings = shell.app, shell.settings
    async for parts in batches(app, stream, settings.batch_size, settings.batch_wait):
        for events in parts:
            first = events[0].message
            outbox = Outbox(first.partition)
            messages = [event.message for event in events]
            async with source(app, events), crash_on(INFRASTRUCTURE_ERRORS):
                times = await ingest(shell, outbox, messages)
                await send_all(app, first.tp, outbox)
            for message, ts in zip(messages, times, strict=True):
                shell.progress.processed(message.partition, message.offset, ts)
                shell.done(INGEST, message)
