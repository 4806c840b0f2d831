"""The worker's `broadcast` audit records: one per scheduled journey's occurrence per customers partition.

The members' entries are counted as they happen (the step's tallies, in the `kpis` table: measurement/occurrences.py).
Once the partition has run everything up to the occurrence's end (no member can enter any more, in any zone), the
record is written from those counters, with a `recorded` counter in the same transaction: exactly once across
crashes and rebalances. A member planned by a deploy's sweep after its occurrence's record was written is counted in
the KPIs only.
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson

from orchestrator.engine.broadcast import ENTERED, HELD_OUT
from orchestrator.engine.outcome import Tally
from orchestrator.engine.schedule import occurrence_end
from orchestrator.measurement import kpis
from orchestrator.measurement.occurrences import BROADCAST, RECORDED
from orchestrator.stream.batching import Outbox
from orchestrator.stream.shell import Shell
from orchestrator.timefmt import format_ms

REASONS = ("where", "reentry", "running", "max_active_journeys", "disabled")  # `not_entered` reasons of a member


def _counter(shell: Shell, partition: int, jid: str, occurrence: str, *figure: str) -> int:
    name = kpis.key(partition, BROADCAST, jid, occurrence, *figure)
    return int(shell.tables.kpis.get(name.encode()) or 0)


def note(shell: Shell, partition: int, tallies: Iterable[Tally]) -> None:
    """The occurrences a step's entries belong to, pending on this partition until complete."""
    pending = shell.occurrences.setdefault(partition, {})
    for tally in tallies:
        found = (tally.journey, tally.occurrence)
        compiled = shell.engine.latest.get(tally.journey)
        if found in pending or compiled is None or compiled.spec.trigger.schedule is None:
            continue
        if not _counter(shell, partition, *found, RECORDED):
            trigger = compiled.spec.trigger
            assert trigger.schedule is not None
            pending[found] = occurrence_end(trigger.schedule, trigger.spread, tally.occurrence)


def complete(shell: Shell, outbox: Outbox, partition: int, frontier: int) -> dict[str, int]:
    """Write the record of each pending occurrence the partition has run past; the `recorded` counters to add."""
    pending = shell.occurrences.get(partition, {})
    done = [(found, end) for found, end in pending.items() if end < frontier]
    added = {}
    for (jid, occurrence), end in done:
        del pending[(jid, occurrence)]
        figures = {figure: _counter(shell, partition, jid, occurrence, figure) for figure in ("audience", ENTERED,
                                                                                               HELD_OUT)}  # fmt: skip
        refused = {reason: n for reason in REASONS if (n := _counter(shell, partition, jid, occurrence,
                                                                       "not_entered", reason))}  # fmt: skip
        version = shell.engine.latest[jid].spec.version if jid in shell.engine.latest else 0
        record = {"at": format_ms(end), "customer": None, "kind": "broadcast", "journey": jid, "version": version,
                  "occurrence": occurrence, **figures, "not_entered": refused, "partition": partition}  # fmt: skip
        outbox.send(shell.topology.audit, f"{jid}@{occurrence}".encode(), orjson.dumps([record]))
        added[kpis.key(BROADCAST, jid, occurrence, RECORDED)] = 1
    return added


def rebuild(shell: Shell, owned: Iterable[int]) -> None:
    """After a rebalance: the owned partitions' occurrences counted but not recorded, from the `kpis` table."""
    keep = set(owned)
    shell.occurrences.clear()
    seen: dict[int, set[tuple[str, str]]] = {}
    recorded: set[tuple[int, str, str]] = set()
    for raw in shell.tables.kpis:
        parts = (raw.decode() if isinstance(raw, bytes) else str(raw)).split(kpis.SEP)
        if len(parts) != 5 or parts[1] != BROADCAST or int(parts[0]) not in keep:
            continue
        partition, _, jid, occurrence, figure = int(parts[0]), *parts[1:]
        if figure == RECORDED:
            recorded.add((partition, jid, occurrence))
        elif figure == "audience":
            seen.setdefault(partition, set()).add((jid, occurrence))
    for partition, found in seen.items():
        note(shell, partition, [Tally(jid, 0, occurrence, 0, "") for jid, occurrence in found
                                if (partition, jid, occurrence) not in recorded])  # fmt: skip
