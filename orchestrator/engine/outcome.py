"""What one engine call decides: the `Outcome` (actions, audit records, timers, baskets) and how an audit record
is written. Shared by the runner and the modules it delegates to (coupons, merges)."""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from orchestrator.contract.events import Event
from orchestrator.engine.affinity import Basket, ModelSource
from orchestrator.engine.state import CustomerState, History, Run, Timer
from orchestrator.timefmt import format_ms

Record = dict[str, Any]


class Tally(NamedTuple):
    """A member of a scheduled journey's audience at an occurrence, and what became of them (`entered`,
    `held_out`, or why not: the reasons of `not_entered`): summed into `broadcast` records (engine/broadcast.py)."""

    journey: str
    version: int
    occurrence: str
    at: int
    result: str


@dataclass(slots=True)
class Outcome:
    state: CustomerState
    now: int
    actions: list[Record] = field(default_factory=list)
    audit: list[Record] = field(default_factory=list)
    timers: list[Timer] = field(default_factory=list)  # newly scheduled; older ones may have gone stale
    duplicate: bool = False
    erased: bool = False  # a `forget` event: the shell deletes this customer's stored state and links
    models: ModelSource | None = None  # the complementary-products model (None: an empty one)
    baskets: list[Basket] = field(default_factory=list)  # what purchases teach that model
    tallies: list[Tally] = field(default_factory=list)  # scheduled entries (and refusals) at this step
    keep: Container[str] | None = None  # the audit kinds recorded (None: all); a replay printing none needs fewer
    _at: str = ""

    def keeps(self, kind: str) -> bool:
        """Whether an audit record of this kind is wanted: skip building one (and its fields) otherwise."""
        return self.keep is None or kind in self.keep

    @property
    def at(self) -> str:
        if not self._at:
            self._at = format_ms(self.now)
        return self._at


def event_audit(event: Event, duplicate: bool) -> Record:
    """The record that places an event in a customer's timeline (`explain`), before the decisions it caused."""
    return {"at": event.data["occurred_at"], "customer": event.customer, "kind": "duplicate" if duplicate else "event",
            "event_id": event.id, "type": event.type, "channel": event.channel}  # fmt: skip


def audit(out: Outcome, kind: str, of: Run | None, **fields: Any) -> None:
    if out.keep is not None and kind not in out.keep:
        return
    record: Record = {"at": out.at, "customer": out.state.key, "kind": kind}
    if of is not None:
        record.update(journey=of.journey, version=of.version, run=of.number)
        if of.occurrence:
            record["occurrence"] = of.occurrence
    record.update(fields)
    out.audit.append(record)


def offers_of(history: History) -> Record:
    """What a `converted` record says of the offers sent in the run (kpis: each offer's conversions)."""
    return {"offers": [{"offer": o, "explore": e} for o, e in history.offers]} if history.offers else {}


def occurrence_of(history: History) -> Record:
    """A `converted` record's `occurrence`, when a schedule started the run (report: per occurrence)."""
    return {"occurrence": history.occurrence} if history.occurrence else {}
