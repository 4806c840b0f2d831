"""One customer's step: (stored state or none, a record, now) -> what changes. Pure.

`simulate` and the streaming worker both call `step`, so the oracle and the worker cannot drift: the sequence
"fire this customer's due timers -> hand over or absorb a merge -> the event -> erasure -> KPI delta -> timer
changes" is written here once. The shells only store the state, index the timers, send the records and forward
the absorb record to the known customer.

The records a customer receives (`Item`):
- an `Event` (validated, resolved to this customer);
- a `Timer` firing: its due time is the step's "now", so replays give the same `at` and `action_id`;
- a `Handover`: this anonymous customer turned out to be `to`; it fires its due timers and leaves, and the step
  returns the `Absorb` record to deliver to `to`;
- an `Absorb`: fold in an anonymous customer's state (if any), then run the event it carries (if any).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Container, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, assert_never

from orchestrator.contract.events import Event
from orchestrator.engine.affinity import Basket, ModelSource
from orchestrator.engine.outcome import Outcome, Record, event_audit
from orchestrator.engine.runner import Engine
from orchestrator.engine.state import CustomerState, Timer
from orchestrator.measurement import kpis
from orchestrator.measurement.audience import member_of
from orchestrator.measurement.occurrences import segment_counts, tally_counts
from orchestrator.timefmt import parse_rfc3339, to_ms


@dataclass(frozen=True, slots=True)
class Handover:
    """To the anonymous customer's partition: give your state to `to` (then the event, if any, runs there)."""

    customer: str  # the anonymous customer being merged away
    to: str
    ts: int
    event: Event | None


@dataclass(frozen=True, slots=True)
class Absorb:
    """To the known customer's partition: fold in this state (if any), then run the event (if any)."""

    customer: str
    source: str  # the anonymous customer it comes from
    state: dict[str, Any] | None
    ts: int
    event: Event | None


Item = Event | Timer | Handover | Absorb
Tokens = Mapping[str, tuple[int, str]]  # pending timers: token -> (due, journey)
_NO_TOKENS: Tokens = MappingProxyType({})


@dataclass(slots=True)
class Step:
    """What one record changed for one customer."""

    key: str
    state: CustomerState | None  # the state to store; None: delete it (erased, handed over, or nothing stored)
    outcomes: list[Outcome] = field(default_factory=list)  # in the order the engine ran them
    scheduled: list[Timer] = field(default_factory=list)  # pending now, not before: add to the timer index
    forward: Absorb | None = None  # a handover's state, for the known customer's partition
    erased: bool = False
    skipped: bool = False  # a timer of a customer with no state (merged away or erased): nothing happened
    kpi_change: Counter[str] | None = None  # `kpi_delta`, when the step counted KPIs
    left: Tokens | None = None  # `cancelled` by token (due, journey): Timers made only when asked

    @property
    def cancelled(self) -> list[Timer]:
        """Pending before, not now: remove from the index. Built when read: a replay's heap never asks."""
        key, left = self.key, self.left or {}
        return sorted(Timer(due, key, journey, token) for token, (due, journey) in left.items())

    @property
    def kpi_delta(self) -> Counter[str]:
        """The change to the KPI counters (orchestrator/measurement/kpis.py); empty when the step did not count them
        (a replay of many steps makes no empty Counter per step)."""
        return Counter() if self.kpi_change is None else self.kpi_change

    @property
    def actions(self) -> list[Record]:
        return [action for outcome in self.outcomes for action in outcome.actions]

    @property
    def baskets(self) -> list[Basket]:
        return [basket for outcome in self.outcomes for basket in outcome.baskets]

    @property
    def audit(self) -> list[Record]:
        return [record for outcome in self.outcomes for record in outcome.audit]

    def trail(self) -> list[tuple[int, Record]]:
        """The step's audit records with the time (ms) each was decided at: the customer's trail in Redis."""
        return [(outcome.now, record) for outcome in self.outcomes for record in outcome.audit]


def item_time(item: Item) -> int:
    """The step's "now": a timer's due time, otherwise the record's event time."""
    return item.due if isinstance(item, Timer) else item.ts


def step(
    engine: Engine,
    stored: CustomerState | None,
    item: Item,
    *,
    models: ModelSource | None = None,
    audit_events: bool = True,
    count_kpis: bool = True,
    audit_kinds: Container[str] | None = None,
) -> Step:
    """Apply `item` to the customer's `stored` state (mutated in place; None: nothing stored yet).

    `models`: the complementary-products model by event time (engine/affinity.py; None: an empty one). The step
    only reads it: the caller folds the step's `baskets` into it.

    With `audit_events` an event's audit starts with its `event` (or `duplicate`) record, as the worker's trail and
    `simulate --explain` have it. `count_kpis=False` leaves `kpi_delta` empty (a replay that folds KPIs at the end).
    `audit_kinds`: the audit kinds to record (None: all; KPIs count from them): a replay that prints no audit
    skips building the rest.
    """
    if isinstance(item, Timer):
        if stored is None:
            return Step(item.customer, None, skipped=True)
        now = item.due
    else:
        now = item.ts
    state = stored if stored is not None else CustomerState(item.customer)
    before = state.timer_tokens() if state.runs or state.armed or state.planned else _NO_TOKENS  # most have none
    if engine.deployed and stored is not None:
        engine.catch_up(state)  # a scheduled journey deployed since this customer's last step
    counted = kpis.contribution(state.profile if stored is not None else None) if count_kpis else None
    segments = engine.segments if count_kpis else {}
    was = member_of(segments, state.key, state.profile if stored is not None else None, now) if segments else None
    result = Step(state.key, state, engine.fire_due(state, now, models, keep=audit_kinds))
    event: Event | None = None
    match item:
        case Event():
            event = item
        case Timer():
            pass
        case Handover():
            handed = None if stored is None else state.to_dict()
            result.forward = Absorb(item.to, item.customer, handed, now, item.event)
            result.state = None
        case Absorb():
            if item.state is not None:
                result.outcomes.append(engine.absorb(state, CustomerState.from_dict(item.state), now))
            event = item.event
        case _:
            assert_never(item)
    if event is not None:
        outcome = engine.on_event(state, event, now, models, keep=audit_kinds)
        if audit_events:
            outcome.audit.insert(0, event_audit(event, outcome.duplicate))
        result.outcomes.append(outcome)
        if outcome.erased:
            result.state, result.erased = None, True
    after = (state.timer_tokens() if result.state is not None and (state.runs or state.armed or state.planned)
             else _NO_TOKENS)
    if after.keys() != before.keys():
        key = state.key
        result.scheduled = sorted(Timer(due, key, journey, token) for token, (due, journey) in after.items()
                                  if token not in before)  # fmt: skip
        result.left = {token: pending for token, pending in before.items() if token not in after}
    if counted is not None:
        result.kpi_change = kpis.change(counted, None if result.state is None else state.profile, result.trail())
        extra = tally_counts((t for outcome in result.outcomes for t in outcome.tallies), kpis.key)
        if was is not None:
            now_in = member_of(segments, state.key, None if result.state is None else state.profile, now)
            extra += segment_counts(was, now_in, kpis.key)
        for name, n in extra:
            result.kpi_change[name] += n
    return result


def late_record(state: CustomerState | None, item: Item) -> Record | None:
    """The audit record `late` for an event older than one its customer has already had (it came more than
    ORCH_MAX_LATENESS behind the rest of its input partition); None for an event in order."""
    if not isinstance(item, Event) or state is None or not state.profile.get("last_seen_at"):
        return None
    seen = state.profile["last_seen_at"]
    if to_ms(parse_rfc3339(seen)) <= item.ts:
        return None
    return {"at": item.data["occurred_at"], "customer": state.key, "kind": "late", "event_id": item.id,
            "last_seen_at": seen}  # fmt: skip
