"""Scheduled triggers in the engine: each known customer's next entry of each scheduled journey is a timer
(`CustomerState.planned`, set by `plan` after each of their events and after each occurrence); when it fires, the
customer enters if they are in the audience and `where` holds as of that instant (engine/schedule.py says when).

An occurrence does not write a `not_entered` record per customer: each member's outcome is a `Tally`, which
`simulate` sums into one `broadcast` record per occurrence (`broadcast_records`) and the worker counts per partition
(stream/occurrences.py).

`Engine` (engine/runner.py) inherits this; the attributes are set by `Engine.__init__`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from orchestrator.engine.compiled import CompiledJourney
from orchestrator.engine.entry import Entry
from orchestrator.engine.identity import is_anonymous
from orchestrator.engine.localtime import customer_zone
from orchestrator.engine.outcome import Outcome, Record, Tally
from orchestrator.engine.policy import ContactPolicy
from orchestrator.engine.schedule import SCHEDULED, last_entry, next_entry
from orchestrator.engine.state import CustomerState, Planned, Timer
from orchestrator.timefmt import format_ms

_NO_EVENT: Mapping[str, Any] = MappingProxyType({})
ENTERED, HELD_OUT = "entered", "held_out"
VISIT = "visit"  # the token of a worker's visit to a stored customer after a deploy: a step with no other effect
FOREVER = 2**62  # the last entry of a schedule that recurs without `until`


class Broadcaster:
    latest: dict[str, CompiledJourney]
    policy: ContactPolicy
    scheduled: dict[str, int]  # journey -> the instant after which nobody enters any more
    deployed: Mapping[str, int]  # scheduled journey -> when it was deployed (absent: there from the start)

    def _maybe_enter(self, out: Outcome, jid: str, entry: Entry, occurrence: str | None = None) -> None:
        raise NotImplementedError  # Engine's

    def plan(self, out: Outcome, after: int, *, again: bool = False) -> None:
        """Set each scheduled journey's next entry of this customer after `after`, where none is pending (`again`:
        replace the pending ones: the customer's time zone changed). Known customers only. When a schedule has no
        more entries for them, a timer-less `Planned` says so: they are never planned for it again (one who had an
        occurrence in the east and moves west, where it is still ahead, does not get it twice)."""
        for jid in self.scheduled:
            pending = out.state.planned.get(jid)
            if pending is None or (again and pending.token):
                self._plan_one(out, jid, after)

    def _plan_one(self, out: Outcome, jid: str, after: int) -> None:
        state = out.state
        if is_anonymous(state.key):
            return
        trigger = self.latest[jid].spec.trigger
        assert trigger.schedule is not None
        pending = state.planned.get(jid)
        since = "" if pending is None else pending.occurrence  # not run yet: it may come, but not an earlier one
        found = None
        if after < self.scheduled[jid]:
            zone = customer_zone(state.profile, self.policy.policy.default_timezone)[0]
            found = next_entry(trigger.schedule, trigger.spread, jid, state.key, zone, after, since)
        if found is None:
            state.planned[jid] = Planned(FOREVER, "", since)
            return
        state.timer_seq += 1
        state.planned[jid] = planned = Planned(found.due, f"{SCHEDULED}.{state.timer_seq}", found.label)
        out.timers.append(Timer(planned.due, state.key, jid, planned.token))

    def catch_up(self, state: CustomerState) -> None:
        """A customer stored before a scheduled journey was deployed and not planned for it since: planned as of the
        deploy, as `simulate --deploy` plans every known customer then. Run before a step fires their due timers (a
        worker's sweep visits those who have no event after the deploy: stream/loops.py)."""
        for jid in self.scheduled:
            deployed = self.deployed.get(jid)
            if deployed is not None and jid not in state.planned:
                self._plan_one(Outcome(state, deployed), jid, deployed)

    def _occur(self, out: Outcome, jid: str, occurrence: str) -> None:
        """A scheduled entry's timer fired: enter if in the audience (as of now), then plan the next occurrence."""
        state, now = out.state, out.now
        compiled = self.latest.get(jid)
        if compiled is not None and compiled.spec.trigger.schedule is not None:
            audience = compiled.audience
            if audience is None or audience((_NO_EVENT, _NO_EVENT, state.profile, now)):
                self._maybe_enter(out, jid, Entry({"type": "schedule", "occurred_at": out.at}), occurrence)
        self.plan(out, now)

    def scheduled_ends(self) -> dict[str, int]:
        """Journey -> last entry instant, of the live scheduled journeys, for `scheduled`."""
        found = {}
        for jid, compiled in sorted(self.latest.items()):
            trigger = compiled.spec.trigger
            if trigger.schedule is not None and compiled.spec.enabled:
                last = last_entry(trigger.schedule, trigger.spread)
                found[jid] = FOREVER if last is None else last
        return found


def broadcast_records(tallies: Iterable[Tally]) -> list[Record]:
    """One `broadcast` record per (journey, version, occurrence): its audience and what became of it, at the first
    entry instant."""
    groups: dict[tuple[str, int, str], tuple[int, Counter[str]]] = {}
    for tally in tallies:
        key = (tally.journey, tally.version, tally.occurrence)
        first, counts = groups.get(key, (tally.at, Counter()))
        counts[tally.result] += 1
        groups[key] = (min(first, tally.at), counts)
    records = []
    for (jid, version, occurrence), (first, counts) in sorted(groups.items(), key=lambda item: item[1][0]):
        refused = {reason: n for reason, n in sorted(counts.items()) if reason not in (ENTERED, HELD_OUT)}
        records.append({"at": format_ms(first), "customer": None, "kind": "broadcast", "journey": jid,
                        "version": version, "occurrence": occurrence, "audience": sum(counts.values()),
                        "entered": counts[ENTERED] + counts[HELD_OUT], "held_out": counts[HELD_OUT],
                        "not_entered": refused})  # fmt: skip
    return records


def plan_all(engine: Broadcaster, states: Iterable[CustomerState], now: int) -> list[Timer]:
    """After a deploy at `now`: the scheduled journeys new to each known customer, planned."""
    timers: list[Timer] = []
    for state in states:
        out = Outcome(state, now)
        engine.plan(out, now)
        timers += out.timers
    return timers
