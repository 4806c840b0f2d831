"""Per occurrence of a scheduled journey: its audience and what became of it (report, dashboard, worker KPIs).

Counted like every KPI (orchestrator/measurement/kpis.py), under `key("b", journey, occurrence, figure)`: the
`broadcast` records give the audience, the entries, the holdout and the refusals by reason; the records of the runs an
occurrence started (they carry `occurrence`) give its sends, its suppressions by reason and its conversions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from orchestrator.engine.broadcast import ENTERED, HELD_OUT
from orchestrator.engine.outcome import Tally

BROADCAST = "b"
SEGMENT = "seg"  # key(SEGMENT, name): the segment's size (the worker's, per partition)
RECORDED = "recorded"  # the worker wrote this partition's `broadcast` record of it (stream/occurrences.py)
FIGURES = ("audience", "entered", "held_out", "sent", "converted")


def occurrence_counts(record: Mapping[str, Any], key: Any) -> list[tuple[str, int]]:
    """(counter, amount) one audit record adds: a `broadcast` record its counts, a run's record 1."""
    occurrence = record.get("occurrence")
    if occurrence is None:
        return []
    base = (BROADCAST, record.get("journey"), occurrence)
    kind = record["kind"]
    if kind == "broadcast":
        found = [(key(*base, figure), record[figure]) for figure in ("audience", "entered", "held_out")]
        return found + [(key(*base, "not_entered", reason), n) for reason, n in record["not_entered"].items()]
    if kind in ("sent", "converted"):
        return [(key(*base, kind), 1)]
    if kind == "suppressed":
        return [(key(*base, "suppressed", record["reason"]), 1)]
    return []


def summarize_occurrences(counts: Mapping[str, int], sep: str) -> dict[str, list[dict[str, Any]]]:
    """{journey: [{occurrence, audience, entered, held_out, sent, suppressed: {reason: n}, not_entered: {reason: n},
    converted}]} in occurrence order."""
    found: dict[str, dict[str, dict[str, Any]]] = {}
    prefix = BROADCAST + sep
    for name, n in counts.items():
        if not name.startswith(prefix):
            continue
        journey, occurrence, figure, *reason = name[len(prefix):].split(sep)
        if figure == RECORDED:
            continue
        row = found.setdefault(journey, {}).setdefault(occurrence, {
            "occurrence": occurrence, **dict.fromkeys(FIGURES, 0), "suppressed": {}, "not_entered": {}})  # fmt: skip
        if reason:
            row[figure][reason[0]] = row[figure].get(reason[0], 0) + n
        else:
            row[figure] += n
    return {jid: [rows[o] for o in sorted(rows)] for jid, rows in sorted(found.items())}


def tally_counts(tallies: Iterable[Tally], key: Any) -> list[tuple[str, int]]:
    """What a step's scheduled entries add (the worker, live: its `broadcast` figures are these counters)."""
    found = []
    for tally in tallies:
        base = (BROADCAST, tally.journey, tally.occurrence)
        found.append((key(*base, "audience"), 1))
        if tally.result in (ENTERED, HELD_OUT):
            found.append((key(*base, "entered"), 1))
            if tally.result == HELD_OUT:
                found.append((key(*base, "held_out"), 1))
        else:
            found.append((key(*base, "not_entered", tally.result), 1))
    return found


def segment_counts(before: frozenset[str], after: frozenset[str], key: Any) -> list[tuple[str, int]]:
    """A customer joining (+1) or leaving (-1) segments: each segment's size as a counter."""
    return [(key(SEGMENT, name), 1) for name in after - before] + [(key(SEGMENT, name), -1) for name in before - after]


def segment_sizes(counts: Mapping[str, int], sep: str, names: Iterable[str] = ()) -> dict[str, int]:
    """{segment: size} from the counters (a worker's, per partition or summed); `names` are listed even when empty
    (a zero counter is not kept)."""
    prefix = SEGMENT + sep
    found = dict.fromkeys(names, 0) | {name[len(prefix):]: n for name, n in counts.items() if name.startswith(prefix)}
    return dict(sorted(found.items()))
