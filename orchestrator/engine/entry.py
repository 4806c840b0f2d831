"""Whether a customer whose trigger fired may enter a journey, and if not why (`not_entered`).

The reasons, checked in this order: the journey's latest version is `disabled`; the customer is already `running`
it; the trigger's `where` is false (`condition`: the first part that failed); `reentry` forbids another run
(`until`: when the cool-down ends; absent for never); the customer already runs `max_active_journeys` marketing
journeys (`active`: which).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orchestrator.contract.conditions import Scope, failing
from orchestrator.engine.compiled import CompiledJourney
from orchestrator.engine.state import CustomerState, Run
from orchestrator.timefmt import format_ms


@dataclass(frozen=True, slots=True)
class Entry:
    """What made the trigger fire: the event (its data, channel and id), or an inactivity timer (no channel, no id)."""

    cause: dict[str, Any]
    channel: str | None = None
    event_id: str | None = None

    @property
    def event_id_field(self) -> dict[str, str]:
        return {} if self.event_id is None else {"event_id": self.event_id}


def refusal(compiled: CompiledJourney, state: CustomerState, scope: Scope, now: int, max_active: int | None,
            marketing: Callable[[Run], bool]) -> dict[str, Any] | None:  # fmt: skip
    """The `not_entered` fields (reason and detail), or None when the customer may enter."""
    spec = compiled.spec
    jid = spec.id
    if not spec.enabled:
        return {"reason": "disabled"}
    running = state.runs.get(jid)
    if running is not None:
        return {"reason": "running", "run": running.number}
    failed = failing(compiled.trigger_where, scope)
    if failed is not None:
        return {"reason": "where", "condition": failed}
    history = state.history.get(jid)
    if history is not None and history.runs:
        if spec.reentry == "never":
            return {"reason": "reentry"}
        if spec.reentry != "always":
            if history.exited is None:
                return {"reason": "reentry"}  # a run that never ended (state from before a merge): no cool-down yet
            until = history.exited + int(spec.reentry)
            if now < until:
                return {"reason": "reentry", "until": format_ms(until)}
    if max_active is not None and compiled.limits.marketing:
        active = sorted(run.journey for run in state.runs.values() if marketing(run))
        if len(active) >= max_active:
            return {"reason": "max_active_journeys", "active": active}
    return None
