"""Per occurrence of a scheduled journey: its audience and what became of it (report, dashboard, worker KPIs).

Counted like every KPI (orchestrator/kpis.py), under `key("b", journey, occurrence, figure)`: the `broadcast`
records give the audience, the entries, the holdout and the refusals by reason; the records of the runs an
occurrence started (they carry `occurrence`) give its sends, its suppressions by reason and its conversions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

BROADCAST = "b"
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
        row = found.setdefault(journey, {}).setdefault(occurrence, {
            "occurrence": occurrence, **dict.fromkeys(FIGURES, 0), "suppressed": {}, "not_entered": {}})  # fmt: skip
        if reason:
            row[figure][reason[0]] = row[figure].get(reason[0], 0) + n
        else:
            row[figure] += n
    return {jid: [rows[o] for o in sorted(rows)] for jid, rows in sorted(found.items())}
