"""The journey engine: one customer's state, one event or timer, the time -> what happens.

Order of work for an event: drop it if its id was seen; apply the built-in profile effects; re-arm the
`inactive_for` triggers; then offer it to each interested journey, higher priority first, then by id (priority
orders what happens at one instant; it never preempts a run). Within a journey: goal conversion, `exit_on`, a
waiting run's `wait_for`, and last the trigger (`event`, or a `becomes` condition the event made true). Sending
is in engine/sending.py, whether a fired trigger may enter in engine/entry.py.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from types import MappingProxyType
from typing import Any

from orchestrator.contract.conditions import compile_segments
from orchestrator.contract.events import Event
from orchestrator.contract.journeys import Journey, Policy, SendSpec
from orchestrator.contract.loader import Loaded
from orchestrator.contract.offers import Catalogue, Offer
from orchestrator.engine.affinity import Basket, ModelSource
from orchestrator.engine.broadcast import ENTERED, HELD_OUT, Broadcaster
from orchestrator.engine.compiled import CompiledJourney, compile_journey, recommendation
from orchestrator.engine.coupons import coupon_revenue, redeem
from orchestrator.engine.decision import compile_offers
from orchestrator.engine.entry import Entry, refusal
from orchestrator.engine.ids import basket_id, unit_interval
from orchestrator.engine.merge import absorb
from orchestrator.engine.outcome import Outcome, Tally, occurrence_of, offers_of
from orchestrator.engine.policy import ContactPolicy
from orchestrator.engine.profile import apply_event
from orchestrator.engine.sending import Sender
from orchestrator.engine.state import (
    INACTIVE,
    SEEN_EVENT_IDS,
    WAIT,
    WAIT_FOR,
    Armed,
    CustomerState,
    History,
    Run,
    Timer,
    new_profile,
)
from orchestrator.engine.waits import wait_until_due
from orchestrator.timefmt import format_ms

DEV_SECRET = b"orchestrator-dev-secret"
FORGET = "forget"
COUPON_REDEEMED = "coupon_redeemed"
PURCHASE = "purchase"
PATH_LIMIT = 8  # channels remembered on the way to a goal: enough for a path, bounded for the state
_NOTHING_HELD: Mapping[str, bool] = MappingProxyType({})  # `becomes` conditions before an event, when none has one


class Engine(Sender, Broadcaster):
    """Immutable once built (but for a memo): the compiled journeys (every version given) and the contact policy."""

    def __init__(
        self,
        journeys: Iterable[Journey],
        policy: Policy | None = None,
        *,
        catalogue: Catalogue | None = None,
        retired: Iterable[Journey] = (),
        secret: bytes = DEV_SECRET,
        segments: Mapping[str, Any] | None = None,
        deployed: Mapping[str, int] | None = None,
    ) -> None:
        """`journeys` take new entrants (the highest version of each id); `retired` versions only finish
        the runs already in them (a worker keeps every version it ever ran). `catalogue`: the offers of
        `offers.yaml`, for `decide` steps; `segments`: segments.yaml's conditions by name; `deployed`: when each
        scheduled journey was deployed, if not from the start (customers stored before are planned as of then)."""
        catalogue = catalogue or Catalogue()
        self.segments = compile_segments(segments or {})
        self.offers = compile_offers(catalogue, self.segments)
        self._offer_recommend = {oid: recommendation(o.spec.recommend) for oid, o in self.offers.items()}
        self.versions: dict[str, dict[int, CompiledJourney]] = {}
        current: dict[str, int] = {}

        def compile_one(journey: Journey) -> CompiledJourney:
            return compile_journey(journey, catalogue, self.segments)

        for journey in journeys:
            self.versions.setdefault(journey.id, {})[journey.version] = compile_one(journey)
            current[journey.id] = max(current.get(journey.id, 0), journey.version)
        for journey in retired:
            self.versions.setdefault(journey.id, {}).setdefault(journey.version, compile_one(journey))
        self.latest = {jid: self.versions[jid][version] for jid, version in current.items()}

        def rank(jid: str) -> tuple[int, str]:
            newest = self.latest.get(jid) or self.versions[jid][max(self.versions[jid])]
            return (-newest.spec.priority, jid)

        self.order = tuple(sorted(self.versions, key=rank))
        sendables: list[SendSpec | Offer] = [
            sendable
            for by_version in self.versions.values()
            for compiled in by_version.values()
            for node in compiled.nodes.values()
            for sendable in ([node.send] if node.send is not None else
                             [self.offers[o].spec for o in node.offers if o in self.offers])
        ]  # fmt: skip
        self.channels = frozenset(channel for spec in sendables for channel in (spec.channel, *spec.fallback))
        # Whether any send asks for complementary products: the worker then learns them (stream/learning.py).
        self.recommends = any(spec.recommend is not None for spec in sendables)
        self.policy = ContactPolicy(policy or Policy())
        self.secret = secret
        interest: dict[str, list[str]] = {}
        for jid in self.order:
            types: set[str] = set()
            for compiled in self.versions[jid].values():
                types |= compiled.exit_on | compiled.waited_events
                if compiled.spec.goal:
                    types.add(compiled.spec.goal.event)
            latest = self.latest.get(jid)
            if latest is not None and latest.spec.trigger.event is not None:
                types.add(latest.spec.trigger.event)  # even when disabled: `not_entered` says so
            for event_type in types:
                interest.setdefault(event_type, []).append(jid)
        live = [(jid, self.latest[jid].spec) for jid in self.order
                if jid in self.latest and self.latest[jid].spec.enabled]  # fmt: skip
        # `becomes` journeys look at every event; `inactive_for` ones are re-armed by every event.
        self.becomes = {jid: test for jid, _ in live if (test := self.latest[jid].becomes) is not None}
        self.inactive = tuple((jid, spec.trigger.inactive_for) for jid, spec in live if spec.trigger.inactive_for)
        self.scheduled = self.scheduled_ends()
        self.deployed = {jid: at for jid, at in (deployed or {}).items() if jid in self.scheduled}
        self._interest = interest
        self._offered: dict[str, tuple[str, ...]] = {}  # a memo of `interested`: a log's event types are not known here

    @classmethod
    def of(cls, loaded: Loaded, *, retired: Iterable[Journey] = (), secret: bytes = DEV_SECRET,
           deployed: Mapping[str, int] | None = None) -> Engine:  # fmt: skip
        """The engine of a loaded journeys folder: its journeys, policy, offers and segments."""
        return cls(loaded.journeys, loaded.policy, catalogue=loaded.catalogue, retired=retired, secret=secret,
                   segments=loaded.segments, deployed=deployed)  # fmt: skip

    def interested(self, event_type: str) -> tuple[str, ...]:
        """The journeys an event of this type is offered to, in order."""
        found = self._offered.get(event_type)
        if found is None:
            wanted = set(self._interest.get(event_type, ())) | set(self.becomes)
            found = self._offered[event_type] = tuple(jid for jid in self.order if jid in wanted)
        return found

    def step_order(self) -> dict[str, list[str]]:
        """Each journey's step names in the order its YAML lists them (nested branches after their step): the
        order of a funnel, for `report` and the dashboard."""

        def natural(path: str) -> list[tuple[int, int | str]]:
            return [(0, int(part)) if part.isdigit() else (1, part) for part in path.split(".")]

        return {jid: [compiled.nodes[path].name for path in sorted(compiled.nodes, key=natural)]
                for jid, compiled in self.latest.items()}  # fmt: skip

    # ----------------------------------------------------------------------------------- inputs

    def on_event(self, state: CustomerState, event: Event, now: int, models: ModelSource | None = None, *,
                 keep: Container[str] | None = None) -> Outcome:  # fmt: skip
        """`keep`: the audit kinds to record (None: all)."""
        out = Outcome(state, now, models=models, keep=keep, _at=event.data["occurred_at"] if now == event.ts else "")
        if event.id in state.seen:
            out.duplicate = True
            return out
        state.seen[event.id] = None
        if len(state.seen) > SEEN_EVENT_IDS:
            del state.seen[next(iter(state.seen))]
        if event.type == FORGET:
            self._forget(out, event)
            return out
        for identifier in event.identifiers:
            state.identifiers[identifier] = max(state.identifiers.get(identifier, 0), event.ts)
        before = {jid: held((event.data, event.data, state.profile, now)) for jid, held in self.becomes.items()
                  } if self.becomes else _NOTHING_HELD  # fmt: skip
        zone = state.profile["traits"].get("timezone")
        basket = apply_event(state.profile, event)
        if self.scheduled:  # the next entries, in the zone as it is now (a new zone moves the pending ones)
            self.plan(out, now, again=bool(state.planned) and state.profile["traits"].get("timezone") != zone)
        if basket:
            out.baskets.append(Basket(basket_id(state.key, event.id), event.ts, basket))
        self._track_paths(state, event, now)
        if event.type == COUPON_REDEEMED:
            redeem(out, event)
        elif event.type == PURCHASE:
            coupon_revenue(out, event)
            programme = state.profile.get("programme")
            if programme is not None:
                programme["revenue"] = round(programme["revenue"] + event.data["properties"]["value"], 2)
        for jid, quiet_for in self.inactive:
            self._arm(out, jid, event.ts + quiet_for)
        for jid in self.interested(event.type):
            self._offer(out, jid, event, before.get(jid))
        return out

    def _arm(self, out: Outcome, jid: str, enters: int) -> None:
        """(Re-)arm an `inactive_for` trigger: the customer enters at `enters` unless another event comes first."""
        state = out.state
        armed = state.armed.get(jid)
        if armed is None:
            self._set_alarm(out, jid, enters, enters)
        elif enters > armed.enters:  # the pending timer stays; when it fires, it is set again for `enters`
            state.armed[jid] = armed._replace(enters=enters)

    @staticmethod
    def _set_alarm(out: Outcome, jid: str, due: int, enters: int) -> None:
        state = out.state
        state.timer_seq += 1
        state.armed[jid] = armed = Armed(due, f"{INACTIVE}.{state.timer_seq}", enters)
        out.timers.append(Timer(due, state.key, jid, armed.token))

    def on_timer(self, state: CustomerState, timer: Timer, now: int, models: ModelSource | None = None, *,
                 keep: Container[str] | None = None) -> Outcome:  # fmt: skip
        """Resume the run the timer belongs to; pass `now=timer.due` for replayable results."""
        out = Outcome(state, now, models=models, keep=keep)
        planned = state.planned.get(timer.journey)
        if planned is not None and planned.token == timer.token:
            del state.planned[timer.journey]
            self._occur(out, timer.journey, planned.occurrence)
            return out
        armed = state.armed.get(timer.journey)
        if armed is not None and armed.token == timer.token:
            if armed.enters > now:  # events came since it was set
                self._set_alarm(out, timer.journey, armed.enters, armed.enters)
                return out
            del state.armed[timer.journey]
            self._maybe_enter(out, timer.journey, Entry({"type": "inactive_for", "occurred_at": out.at}))
            return out
        run = state.runs.get(timer.journey)
        if run is None or run.wait is None or run.wait.token != timer.token:
            return out  # the run moved on (event, exit, merge) since the timer was set
        compiled = self.versions.get(run.journey, {}).get(run.version)
        if compiled is None:
            self._end(out, run, "version_removed")
            return out
        wait, run.wait = run.wait, None
        node = compiled.nodes[wait.step]
        if wait.kind == WAIT:
            self._advance(out, run, compiled, node.next)
        elif wait.kind == WAIT_FOR:
            self._audit(out, "timed_out", run, step=node.name)
            self._advance(out, run, compiled, node.branch_b)
        else:  # DEFER: the quiet window is over, decide the send again
            self._advance(out, run, compiled, node.path, resumed=True)
        return out

    def absorb(self, state: CustomerState, other: CustomerState, now: int) -> Outcome:
        """Merge an anonymous customer into `state` (the known one it turned out to be): engine/merge.py. The
        programme group is the known key's (the global holdout hashes the key)."""
        out = absorb(state, other, now)
        programme = state.profile.get("programme")
        if programme is not None:
            programme["control"] = self._control(state.key)
        return out

    def _forget(self, out: Outcome, event: Event) -> None:
        """Right to erasure: everything about the customer goes; the shell deletes the stored state."""
        state = out.state
        state.profile, state.runs, state.history = new_profile(), {}, {}
        state.sends, state.seen, state.identifiers, state.offer_sends, state.armed = [], {}, {}, {}, {}
        state.planned = {}
        out.erased = True
        self._audit(out, "erased", None, event_id=event.id)

    def fire_due(self, state: CustomerState, now: int, models: ModelSource | None = None, *,
                 keep: Container[str] | None = None) -> list[Outcome]:  # fmt: skip
        """Fire this customer's own timers due at or before `now`, in due order, each at its due time.

        A streaming worker calls this before each event (and for each timer record) so that one
        customer's results never depend on when the timer loop happened to run: the oracle holds.
        """
        outcomes: list[Outcome] = []
        if not state.runs and not state.armed and not state.planned:
            return outcomes  # no timers (most customers): the hot path
        while True:
            due = state.due_timers(now)
            if not due:
                return outcomes
            timer = due[0] if len(due) == 1 else min(due, key=lambda t: (t.due, self._rank(t.journey), t.token))
            outcomes.append(self.on_timer(state, timer, timer.due, models, keep=keep))

    def _rank(self, jid: str) -> int:
        return self.order.index(jid) if jid in self.order else len(self.order)

    # ---------------------------------------------------------------------------------- journeys

    def _offer(self, out: Outcome, jid: str, event: Event, held_before: bool | None) -> None:
        """`held_before`: for a `becomes` journey, whether its condition held before this event."""
        state, now = out.state, out.now
        history = state.history.get(jid)
        if history is not None and not history.converted:
            goal_of = self.versions[jid].get(history.version)
            goal = goal_of.spec.goal if goal_of else None
            if goal is not None and event.type == goal.event and now - history.entered <= goal.within:
                history.converted = True
                programme = state.profile.get("programme")
                if programme is not None and goal_of is not None and goal_of.limits.marketing:
                    programme["conversions"] += 1
                self._audit(out, "converted", None, journey=jid, version=history.version, run=history.runs,
                            holdout=history.holdout, event_id=event.id, path=list(history.path),
                            **offers_of(history), **occurrence_of(history))  # fmt: skip
        run = state.runs.get(jid)
        if run is not None:
            compiled = self.versions[jid].get(run.version)
            if compiled is None:
                self._end(out, run, "version_removed")
            elif event.type in compiled.exit_on:
                self._end(out, run, f"exit_on:{event.type}", event_id=event.id)
            elif run.wait is not None and run.wait.kind == WAIT_FOR:
                node = compiled.nodes[run.wait.step]
                if node.event == event.type and (
                    node.test is None or node.test((event.data, run.entry, state.profile, now))
                ):
                    run.wait, run.cause = None, event.data
                    self._audit(out, "matched", run, step=node.name, event_id=event.id)
                    self._advance(out, run, compiled, node.branch_a)
        latest = self.latest.get(jid)
        trigger = None if latest is None else latest.spec.trigger
        if trigger is None:
            return
        if trigger.event == event.type or (
            held_before is False and latest is not None and latest.becomes is not None
            and latest.becomes((event.data, event.data, state.profile, now))
        ):  # fmt: skip
            self._maybe_enter(out, jid, Entry(event.data, event.channel, event.id))

    def _track_paths(self, state: CustomerState, event: Event, now: int) -> None:
        """The channels a customer uses between entering a journey and its goal: a conversion's path."""
        channel = event.channel
        for jid, history in state.history.items():
            path = history.path
            if history.converted or (path and path[-1] == channel) or len(path) >= PATH_LIMIT:
                continue  # the cheap tests first: most histories take nothing
            versions = self.versions.get(jid)
            compiled = versions.get(history.version) if versions is not None else None
            goal = compiled.spec.goal if compiled else None
            if goal is not None and now - history.entered <= goal.within:
                path.append(channel)

    def _maybe_enter(self, out: Outcome, jid: str, entry: Entry, occurrence: str | None = None) -> None:
        """A trigger fired: enter the journey's latest version, or audit `not_entered` with the reason (a scheduled
        one's `occurrence`: tallied instead, for its `broadcast` record)."""
        compiled = self.latest.get(jid)
        if compiled is None:
            return  # only retired versions: no new entrants
        spec = compiled.spec
        state, now = out.state, out.now
        why = refusal(compiled, state, (entry.cause, entry.cause, state.profile, now), now,
                      self.policy.policy.max_active_journeys, self._marketing)  # fmt: skip
        if why is not None:
            if occurrence is not None:
                out.tallies.append(Tally(jid, spec.version, occurrence, now, why["reason"]))
            elif out.keeps("not_entered"):
                self._audit(out, "not_entered", None, journey=jid, version=spec.version, **why,
                            **entry.event_id_field)  # fmt: skip
            return
        history = state.history.setdefault(jid, History())
        holdout = spec.holdout > 0 and unit_interval("holdout", jid, state.key) * 100 < spec.holdout
        control = False
        if compiled.limits.marketing:
            control = self._control(state.key)
            programme = state.profile.setdefault("programme", {"control": control, "conversions": 0, "revenue": 0})
            programme["control"] = control
        history.runs += 1
        history.version, history.entered, history.exited = spec.version, now, None
        history.holdout, history.converted, history.offers = holdout, False, []
        history.path = [] if entry.channel is None else [entry.channel]
        if occurrence is not None:
            out.tallies.append(Tally(jid, spec.version, occurrence, now, HELD_OUT if holdout else ENTERED))
        history.occurrence = occurrence or ""
        run = Run(jid, spec.version, history.runs, now, entry.cause, entry.cause, holdout, None, history.occurrence)
        state.runs[jid] = run
        if out.keeps("entered"):
            self._audit(out, "entered", run, **entry.event_id_field, holdout=holdout,
                        **({"global_holdout": True} if control else {}))  # fmt: skip
        self._advance(out, run, compiled, compiled.first)

    def _marketing(self, run: Run) -> bool:
        compiled = self.versions.get(run.journey, {}).get(run.version)
        return compiled is None or compiled.limits.marketing

    # ------------------------------------------------------------------------------------- steps

    def _advance(self, out: Outcome, run: Run, compiled: CompiledJourney, path: str | None, *,
                 resumed: bool = False) -> None:  # fmt: skip
        """Run steps at this instant until one waits or the run ends. `resumed`: the first step is a send or a
        decision that quiet hours held back, taken again now (its `step` record was written then)."""
        state, now = out.state, out.now
        while path is not None:
            node = compiled.nodes[path]
            kind = node.kind
            if kind == "wait":
                self._wait(out, run, node, WAIT, now + node.duration)
                return
            if kind == "wait_until":
                due = wait_until_due(node, self._scope(run, state, now), now, lambda: self._zone(out))
                if due is None:
                    self._end(out, run, "no_date", step=node.name)
                    return
                if due > now:
                    self._wait(out, run, node, WAIT, due)
                    return
                self._audit(out, "step", run, step=node.name, type=kind, until=format_ms(due))  # already past
                path = node.next
                continue
            if kind == "wait_for":
                self._wait(out, run, node, WAIT_FOR, now + node.duration)
                return
            if not resumed and out.keeps("step"):
                self._audit(out, "step", run, step=node.name, type=kind)
            resumed = False
            if kind == "send":
                if not self._send(out, run, node):
                    return
                path = node.next
            elif kind == "decide":
                picked = self._decide(out, run, node)
                if picked is None:
                    return
                path = node.next if picked else node.branch_b
            elif kind == "if":
                assert node.test is not None
                path = node.branch_a if node.test(self._scope(run, state, now)) else node.branch_b
            elif kind == "split":
                share = unit_interval("split", run.journey, state.key, node.path)
                path = next((first for cumulative, first in node.arms if share < cumulative), node.arms[-1][1])
            elif kind == "exit":
                self._end(out, run, "exit")
                return
            else:
                raise AssertionError(f"unhandled step kind {kind}")
        self._end(out, run, "completed")

    def _end(self, out: Outcome, run: Run, reason: str, **extra: Any) -> None:
        out.state.runs.pop(run.journey, None)
        history = out.state.history.get(run.journey)
        if history is not None:
            history.exited = out.now
        self._audit(out, "exited", run, reason=reason, **extra)
