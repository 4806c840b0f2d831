"""Replay an event log through the engine with a virtual clock: the oracle for every other runtime.

Events run in order of `occurred_at`, then `event_id` (a tie-break a worker can know: docs/contract.md). Before
each event, every timer due at or before its time fires, in due order (ties: customer, journey priority, token).
After the last event, timers fire up to `until` (or until none is left); scheduled entries (engine/broadcast.py)
up to `until` or the last event's time, so that a recurring schedule without an end does not run for ever. Each
occurrence's members are summed into one `broadcast` audit record, written after the replay.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Container, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path

import orjson

from orchestrator.contract.events import MAX_EVENT_BYTES, Event, InvalidEvent, event_from_document, too_large
from orchestrator.contract.schedules import DAY_MS
from orchestrator.engine import CustomerState, Engine, Outcome, Timer
from orchestrator.engine.affinity import Models
from orchestrator.engine.broadcast import broadcast_records, plan_all
from orchestrator.engine.history import FORGET, FactStore, fact_of, order_of, unlink
from orchestrator.engine.identity import DEV_IDENTITY_SECRET, conflict_records, event_identifiers, resolve_event
from orchestrator.engine.outcome import Record, Tally
from orchestrator.engine.schedule import SCHEDULED
from orchestrator.engine.step import Handover, Item, Step, late_record, step
from orchestrator.timefmt import NEVER


@dataclass(frozen=True, slots=True)
class BadLine:
    line: int
    reason: str


@dataclass(slots=True)
class EventLog:
    events: list[Event] = field(default_factory=list)  # sorted by (time, event id); file order for one event twice
    bad: list[BadLine] = field(default_factory=list)
    arrival: list[Event] = field(default_factory=list)  # the same events in file order


def read_event_lines(lines: Iterable[bytes | str], max_bytes: int = MAX_EVENT_BYTES) -> EventLog:
    """Parse JSON lines; a bad line is kept as a BadLine with its number and reason, never raised.

    A line longer than `max_bytes` (without its line break: the record `orchestrator send` would produce) is
    refused as the worker refuses it, with the same reason."""
    log = EventLog()
    events, loads = log.events, orjson.loads
    for number, line in enumerate(lines, start=1):
        raw = (line.encode() if isinstance(line, str) else line).rstrip(b"\r\n")
        if not raw or raw.isspace():
            continue
        if len(raw) > max_bytes and (reason := too_large(raw, max_bytes)) is not None:
            log.bad.append(BadLine(number, reason))
            continue
        try:
            events.append(event_from_document(loads(raw)))
        except orjson.JSONDecodeError as exc:
            log.bad.append(BadLine(number, f"not JSON ({exc})"))
        except InvalidEvent as exc:
            log.bad.append(BadLine(number, str(exc)))
    log.arrival = list(log.events)
    log.events.sort(key=attrgetter("ts", "id"))  # order_of, in C; stable: one event sent twice stays in file order
    return log


def read_event_log(path: Path) -> EventLog:
    with path.open("rb") as handle:
        return read_event_lines(handle)


@dataclass(slots=True)
class Result:
    actions: list[Record] = field(default_factory=list)
    audit: list[Record] = field(default_factory=list)
    states: dict[str, CustomerState] = field(default_factory=dict)
    events: int = 0
    duplicates: int = 0
    timers_fired: int = 0
    after_until: int = 0  # events later than `until`, not processed
    kpi_counts: Counter[str] = field(default_factory=Counter)  # the steps' KPI deltas folded, as the worker does
    tallies: list[Tally] = field(default_factory=list)  # scheduled entries: summed into `broadcast` records
    last_event: int = 0  # the time of the latest event run (ms)


class Simulator:
    """The engine plus an in-memory customer table and timer heap; `simulate` and tests drive it."""

    def __init__(
        self,
        engine: Engine,
        on_outcome: Callable[[Outcome], None] | None = None,
        *,
        record_events: bool = False,
        identity_secret: bytes = DEV_IDENTITY_SECRET,
        count_kpis: bool = False,
        audit_kinds: Container[str] | None = None,
        on_day_end: Callable[[int, Mapping[str, CustomerState]], None] | None = None,
    ) -> None:
        """`record_events` adds an `event` (or `duplicate`) record to the audit before each event's decisions;
        `count_kpis` folds each step's KPI delta into `result.kpi_counts`, as the worker's `kpis` table does;
        `audit_kinds`: the engine's audit records kept (None: all), for a replay that prints only some;
        `on_day_end(at, states)`: called at each UTC midnight the log passes (and at its end) with the customers as
        of just before it (report: segment sizes per day)."""
        self.engine = engine
        self.record_events = record_events
        self.count_kpis = count_kpis
        self.audit_kinds = audit_kinds
        self.identity_secret = identity_secret
        self.graph: dict[str, str] = {}  # identifier -> customer key: the in-memory identity graph
        self.models = Models()  # complementary products, learned from every step's baskets (engine/affinity.py)
        self.result = Result()
        self._heap: list[tuple[int, str, int, str, Timer]] = []
        self._rank = {jid: i for i, jid in enumerate(engine.order)}
        self._on_outcome = on_outcome
        self._last = NEVER  # the latest event time fed
        self._on_day_end = on_day_end
        self._midnight: int | None = None  # the next UTC midnight `on_day_end` is called at

    def state(self, key: str) -> CustomerState:
        states = self.result.states
        if key not in states:
            states[key] = CustomerState(key)
        return states[key]

    def restore(self, states: Iterable[CustomerState]) -> None:
        """Start from stored states, as a recovering worker does: the states, and their pending timers indexed."""
        for state in states:
            self.result.states[state.key] = state
            self._index(state.pending_timers())

    def _index(self, timers: Iterable[Timer]) -> None:
        for timer in timers:
            rank = self._rank.get(timer.journey, len(self._rank))
            heapq.heappush(self._heap, (timer.due, timer.customer, rank, timer.token, timer))

    def _apply(self, item: Item, late: Record | None = None) -> Step:
        """The per-customer step the worker runs too (orchestrator/engine/step.py), on the in-memory table; `late`:
        the audit record of an event that came after a later one of its customer (`run_in_arrival_order`)."""
        states = self.result.states
        done = step(self.engine, states.get(item.customer), item, models=self.models, audit_events=self.record_events,
                    count_kpis=self.count_kpis, audit_kinds=self.audit_kinds)  # fmt: skip
        if late is not None and done.outcomes and not done.outcomes[-1].duplicate:
            done.outcomes[-1].audit.insert(1 if self.record_events else 0, late)  # after the event's own record
        if self.count_kpis:
            self.result.kpi_counts.update(done.kpi_delta)
        if done.state is None:
            states.pop(done.key, None)
        else:
            states[done.key] = done.state
        if done.scheduled:
            self._index(done.scheduled)
        for outcome in done.outcomes:
            for basket in outcome.baskets:
                self.models.add(basket)
            self.result.actions.extend(outcome.actions)
            self.result.audit.extend(outcome.audit)
            self.result.tallies.extend(outcome.tallies)
            if self._on_outcome is not None:
                self._on_outcome(outcome)
        return done

    def advance_to(self, now: int | None, scheduled_until: int | None = None) -> None:
        """Fire every timer due at or before `now` (all of them when None), in due order; scheduled entries only up
        to `scheduled_until` when given (the end of the replay)."""
        heap = self._heap
        while heap and (now is None or heap[0][0] <= now):
            timer = heapq.heappop(heap)[-1]
            if timer.customer not in self.result.states:
                continue  # merged away: its runs moved, with new timers, to the known customer
            if scheduled_until is not None and timer.due > scheduled_until and timer.token.startswith(SCHEDULED):
                continue
            self.result.timers_fired += 1
            self._apply(timer)

    def feed(self, event: Event, as_of: dict[str, str] | None = None) -> Step:
        """Run one event; `as_of`: the identity graph as of its time (`run_in_arrival_order`), else the graph of
        the events fed so far."""
        if self._on_day_end is not None:
            self._days_until(event.ts)
        if self._heap and self._heap[0][0] <= event.ts:
            self.advance_to(event.ts)
        identifiers, resolution = event_identifiers(event, self.identity_secret), None
        if identifiers:  # else only a customer_id: nothing to look up, the event is its customer's already
            resolution, event = resolve_event(event, identifiers, self.graph if as_of is None else as_of)
        late = None if as_of is None else late_record(self.result.states.get(event.customer), event)
        if resolution is not None and resolution.links:
            if as_of is None:
                self.graph.update(resolution.links)
            for anonymous in resolution.merges:  # as the worker does: the anonymous state hands itself over
                if anonymous in self.result.states:
                    handed = self._apply(Handover(anonymous, event.customer, event.ts, None))
                    assert handed.forward is not None
                    self._apply(handed.forward)
            self.result.audit.extend(conflict_records(resolution, event.data["occurred_at"]))
        done = self._apply(event, late)
        if event.type == FORGET and as_of is None:  # as the history folds it (engine/history.py), even a repeat
            unlink(self.graph, event.customer)
        duplicate = done.outcomes[-1].duplicate
        self._last = self.result.last_event = max(self._last, event.ts)
        self.result.events += 1
        self.result.duplicates += duplicate
        return done

    def _days_until(self, ts: int) -> None:
        assert self._on_day_end is not None
        if self._midnight is None:
            self._midnight = (ts // DAY_MS + 1) * DAY_MS
        while ts >= self._midnight:
            self.advance_to(self._midnight - 1)
            self._on_day_end(self._midnight, self.result.states)
            self._midnight += DAY_MS

    def deploy(self, at: int, engine: Engine) -> None:
        """A deploy at `at` (ms): timers due before it fire on the engine in force, then `engine` takes over (its
        journeys take new entrants; runs in flight finish on their versions, which it keeps as retired)."""
        self.advance_to(at - 1)
        self.engine = engine
        self._rank = {jid: i for i, jid in enumerate(engine.order)}
        pending = [entry[-1] for entry in self._heap]
        self._heap = []
        self._index(pending)  # the new engine's journey order breaks ties from now on
        self._index(plan_all(engine, self.result.states.values(), at))  # its scheduled journeys, for everyone

    def run(
        self, events: Iterable[Event], until: int | None = None, deploys: Iterable[tuple[int, Engine]] = ()
    ) -> Result:
        """Replay `events` (sorted by time); `deploys`: (time in ms, engine) switched to at that time: timers and
        events at or after it run on that engine."""
        schedule = sorted(deploys, key=lambda deploy: deploy[0])
        for event in events:
            if until is not None and event.ts > until:
                self.result.after_until += 1
                continue
            while schedule and schedule[0][0] <= event.ts:
                self.deploy(*schedule.pop(0))
            self.feed(event)
        for at, engine in schedule:
            if until is not None and at > until:
                break
            self.deploy(at, engine)
        return self._finish(until, self._last)

    def _finish(self, until: int | None, last: int) -> Result:
        """The timers after the last event (scheduled entries up to `until`, else the last event's time), then the
        occurrences' `broadcast` records."""
        if self._on_day_end is not None and self._midnight is not None:
            end = last + 1 if until is None else until + 1
            self._days_until(end)
            self.advance_to(end - 1, last if until is None else None)
            self._on_day_end(end, self.result.states)
        self.advance_to(until, last if until is None else None)
        if self.result.tallies and (self.audit_kinds is None or "broadcast" in self.audit_kinds):
            self.result.audit.extend(broadcast_records(self.result.tallies))
        return self.result

    def run_in_arrival_order(self, events: Iterable[Event], lateness_ms: int, until: int | None = None) -> Result:
        """Replay `events` as one input partition that delivers them in this order, with the worker's lateness rule
        (stream/intake.py): each waits until the newest time read, minus `lateness_ms`, has passed it; the waiting
        ones run in (time, event id) order, each resolved as of its time against the events read so far. An event
        read after that point had passed its time is late: it runs at once, audited `late` if its customer had a
        later event. The oracle for a log whose file order is the arrival order."""
        store, waiting, newest = FactStore(), list[tuple[tuple[int, str], int, Event, list[str]]](), NEVER

        def release(watermark: int | None) -> None:
            while waiting and (watermark is None or waiting[0][0][0] <= watermark):
                order, _, event, identifiers = heapq.heappop(waiting)
                if until is not None and event.ts > until:
                    self.result.after_until += 1
                    continue
                self.feed(event, store.as_of(order, identifiers))

        for number, event in enumerate(events):
            identifiers = event_identifiers(event, self.identity_secret)
            if (fact := fact_of(event, identifiers)) is not None:
                store.add(fact)
            heapq.heappush(waiting, (order_of(event), number, event, identifiers))
            newest = max(newest, event.ts)
            release(newest - lateness_ms)
        release(None)
        return self._finish(until, self._last)


def simulate(engine: Engine, events: Iterable[Event], until: int | None = None) -> Result:
    return Simulator(engine).run(events, until)


def by_customer(records: Iterable[Record], key: str = "customer") -> Iterator[tuple[str, list[Record]]]:
    """Group records by customer, customers in order of first appearance, records in order."""
    groups: dict[str, list[Record]] = {}
    for record in records:
        groups.setdefault(str(record[key]), []).append(record)
    yield from groups.items()
