"""Property-based tests of the engine through the virtual-clock simulator.

Logs are realistic: a few customers (known or anonymous), the built-in event types with valid
properties, times from seconds to days apart (sometimes out of file order, with UTC offsets), and
now and then a reused event id. Engines combine journeys built in code (waits, wait_for with timeout,
30%/50% holdouts, email/push/sms with fallbacks, exit_on, if, split, wait_until, coupons) and the
shipped `journeys/`, under capped, open and quiet-hours policies.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from typing import Any

import orjson
import pytest
from hypothesis import given, settings, target
from hypothesis import strategies as st

from orchestrator.engine import CustomerState, Outcome
from orchestrator.engine.identity import event_identifiers, resolve_event
from orchestrator.engine.localtime import customer_zone, quiet_until
from orchestrator.engine.outcome import Record
from orchestrator.simulate import Result, Simulator, simulate
from orchestrator.timefmt import parse_clock, parse_rfc3339, to_ms
from tests.strategies import (
    customer_key,
    duplicating,
    engine_keys,
    event_logs,
    make_engine,
    policies,
    to_events,
)

DAY_MS = 24 * 3600 * 1000
# libcst (which Hypothesis imports to print a failing example as a patch) warns on import; under
# filterwarnings=error that turned every falsified property into an INTERNALERROR without the example.
pytestmark = pytest.mark.filterwarnings("ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning")
PROPERTY = settings(max_examples=200, deadline=None, derandomize=True)


def ms(text: str) -> int:
    return to_ms(parse_rfc3339(text))


def frozen(records: list[Record]) -> bytes:
    """Records as bytes: compares values *and* types (1 vs 1.0), and snapshots mutable data."""
    return orjson.dumps(records)


def run(key: tuple[str, str], docs: list[dict[str, Any]], until: int | None = None) -> Result:
    return simulate(make_engine(key), to_events(docs), until)


def runs_of(result: Result) -> dict[tuple[str, str, int], list[Record]]:
    """Audit records per (customer, journey, run), in order."""
    grouped: dict[tuple[str, str, int], list[Record]] = defaultdict(list)
    for record in result.audit:
        if "run" in record:
            grouped[(record["customer"], record["journey"], record["run"])].append(record)
    return grouped


# ------------------------------------------------------------------------------ 1. determinism


@PROPERTY
@given(key=engine_keys, docs=event_logs())
def test_replaying_the_same_log_twice_gives_identical_actions_and_audit(
    key: tuple[str, str], docs: list[dict[str, Any]]
) -> None:
    first = run(key, copy.deepcopy(docs))
    second = run(key, copy.deepcopy(docs))
    assert frozen(first.actions) == frozen(second.actions)
    assert frozen(first.audit) == frozen(second.audit)
    assert first.timers_fired == second.timers_fired


# ------------------------------------------------------------------------------ 2. interleaving


@PROPERTY
@given(key=engine_keys, docs=event_logs(min_customers=2, max_customers=5), data=st.data())
def test_a_customers_actions_do_not_depend_on_other_customers(
    key: tuple[str, str], docs: list[dict[str, Any]], data: st.DataObject
) -> None:
    target = data.draw(st.sampled_from(sorted({customer_key(d) for d in docs})))
    alone = run(key, [d for d in docs if customer_key(d) == target])
    mixed = run(key, docs)

    def mine(records: list[Record], field: str) -> bytes:
        return frozen([own(r) for r in records if r[field] == target])

    def own(record: Record) -> Record:
        """All of a record but the complementary products, which every customer's purchases teach."""
        if "model_version" not in record:
            return record
        data = {k: v for k, v in record["data"].items() if k != "recommended"}
        return {**{k: v for k, v in record.items() if k != "model_version"}, "data": data}

    assert mine(alone.actions, "customer_id") == frozen([own(a) for a in alone.actions])  # nobody else appears
    assert mine(mixed.actions, "customer_id") == frozen([own(a) for a in alone.actions])
    assert mine(mixed.audit, "customer") == frozen(alone.audit)


# ------------------------------------------------------------------- 3. nothing after exit, holdout


@PROPERTY
@given(key=engine_keys, docs=event_logs())
def test_nothing_is_sent_after_a_run_exits_nor_to_a_holdout_run(
    key: tuple[str, str], docs: list[dict[str, Any]]
) -> None:
    result = run(key, docs)
    runs = runs_of(result)
    sent_by_action: dict[str, tuple[str, str, int]] = {}
    for run_key, records in runs.items():
        kinds = [r["kind"] for r in records]
        assert kinds[0] == "entered", (run_key, kinds)
        assert kinds.count("entered") == 1 and kinds.count("exited") <= 1, (run_key, kinds)
        if "exited" in kinds:
            after = kinds[kinds.index("exited") + 1 :]
            assert set(after) <= {"converted"}, f"{run_key}: {after} after exiting"
        if records[0]["holdout"]:
            assert "sent" not in kinds, f"{run_key} is a holdout run but sent something"
        for record in records:
            if record["kind"] == "sent":
                assert record["action_id"] not in sent_by_action, "an action id was reused"
                sent_by_action[record["action_id"]] = run_key

    assert len(result.actions) == len(sent_by_action)
    for action in result.actions:
        customer, journey, number = sent_by_action[action["action_id"]]
        assert (action["customer_id"], action["journey"]) == (customer, journey)
        entered = runs[(customer, journey, number)][0]
        assert entered["holdout"] is False
        assert action["journey_version"] == entered["version"]
        exits = [r for r in runs[(customer, journey, number)] if r["kind"] == "exited"]
        if exits:
            assert ms(action["at"]) <= ms(exits[0]["at"])


# ---------------------------------------------------------------------------------- 4. daily caps


@PROPERTY
@given(key=engine_keys, docs=event_logs())
def test_no_rolling_24h_window_holds_more_sends_than_the_daily_cap(
    key: tuple[str, str], docs: list[dict[str, Any]]
) -> None:
    caps = policies()[key[1]].max_per_day
    result = run(key, docs)
    sent: dict[tuple[str, str], list[int]] = defaultdict(list)
    for action in result.actions:
        sent[(action["customer_id"], action["channel"])].append(ms(action["at"]))
    busiest = 0
    for (customer, channel), times in sent.items():
        cap = caps.get(channel)
        if cap is None:
            continue
        for end in times:
            window = [t for t in times if end - DAY_MS < t <= end]
            assert len(window) <= cap, f"{customer} got {len(window)} {channel} sends in 24h (cap {cap})"
            busiest = max(busiest, len(times))
    target(float(busiest), label="capped sends to one customer on one channel")


# ------------------------------------------------------------------------------- 5. time order


@PROPERTY
@given(key=engine_keys, docs=event_logs())
def test_actions_come_in_time_order_and_never_before_their_cause(
    key: tuple[str, str], docs: list[dict[str, Any]]
) -> None:
    events = to_events(docs)
    first_seen: dict[tuple[str, str], int] = {}
    for event in events:  # the first event with an id is the one processed (sorted, stable)
        first_seen.setdefault((event.customer, event.id), event.ts)
    result = simulate(make_engine(key), events)
    times = [ms(a["at"]) for a in result.actions]
    assert times == sorted(times)
    for action, at in zip(result.actions, times, strict=True):
        cause = first_seen[(action["customer_id"], action["event_id"])]
        assert at >= cause, action
    audit_times = [ms(r["at"]) for r in result.audit]
    assert audit_times == sorted(audit_times)


# -------------------------------------------------------------------------------- 6. duplicates


@PROPERTY
@given(key=engine_keys, docs=event_logs(), data=st.data())
def test_duplicated_lines_change_nothing(key: tuple[str, str], docs: list[dict[str, Any]], data: st.DataObject) -> None:
    doubled = data.draw(duplicating(docs))
    once, twice = run(key, docs), run(key, doubled)
    assert frozen(twice.actions) == frozen(once.actions)
    assert frozen(twice.audit) == frozen(once.audit)
    assert twice.duplicates == once.duplicates + (len(doubled) - len(docs))


# --------------------------------------------------------------------------- 7. state round trip


def round_trip(state: CustomerState) -> CustomerState:
    return CustomerState.from_dict(orjson.loads(orjson.dumps(state.to_dict())))


def snapshotting(sim_actions: list[bytes]) -> Any:
    def on_outcome(outcome: Outcome) -> None:
        sim_actions.extend(orjson.dumps(a) for a in outcome.actions)

    return on_outcome


def restart(key: tuple[str, str], states: dict[str, CustomerState], emitted: list[bytes]) -> Simulator:
    """A simulator recovered from stored states, as a worker would: states plus their pending timers."""
    sim = Simulator(make_engine(key), snapshotting(emitted))
    sim.restore(states.values())
    return sim


@PROPERTY
@given(key=engine_keys, docs=event_logs(), data=st.data())
def test_state_survives_a_json_round_trip_and_replay_continues_identically(
    key: tuple[str, str], docs: list[dict[str, Any]], data: st.DataObject
) -> None:
    events = to_events(docs)
    cut = data.draw(st.sampled_from([e.ts for e in events]))
    head, tail = [e for e in events if e.ts <= cut], [e for e in events if e.ts > cut]

    whole_emitted: list[bytes] = []
    Simulator(make_engine(key), snapshotting(whole_emitted)).run(events)

    emitted: list[bytes] = []
    original = Simulator(make_engine(key), snapshotting(emitted))
    original.run(head, until=cut)
    split_at = len(emitted)

    copies = {}
    for customer, state in original.result.states.items():
        copied = round_trip(state)
        assert orjson.dumps(copied.to_dict()) == orjson.dumps(state.to_dict()), customer
        assert copied.pending_timers() == state.pending_timers()
        copies[customer] = copied

    resumed_emitted: list[bytes] = []
    resumed = restart(key, copies, resumed_emitted)
    resumed.models = copy.deepcopy(original.models)  # the worker rereads its baskets topic at start
    resumed.run(tail)
    original.run(tail)

    assert emitted == whole_emitted  # stopping the clock at `cut` and going on changes nothing
    assert resumed_emitted == emitted[split_at:]  # neither does restarting from JSON states
    for customer, state in original.result.states.items():
        assert orjson.dumps(resumed.result.states[customer].to_dict()) == orjson.dumps(state.to_dict())


@PROPERTY
@given(key=engine_keys, docs=event_logs(min_customers=1, max_customers=2))
def test_a_round_tripped_state_reacts_to_the_next_event_like_the_original(
    key: tuple[str, str], docs: list[dict[str, Any]]
) -> None:
    """The simple form of the round trip: after each prefix, the next event on a copy == on the original."""
    engine = make_engine(key)
    sim = Simulator(engine)
    for event in to_events(docs):
        sim.advance_to(event.ts)
        _, resolved = resolve_event(event, event_identifiers(event, sim.identity_secret), sim.graph)
        state = sim.state(resolved.customer)
        copied = round_trip(state)
        twin = engine.on_event(copied, resolved, event.ts)
        real = sim.feed(event).outcomes[-1]
        assert orjson.dumps(twin.actions) == orjson.dumps(real.actions)
        assert orjson.dumps(twin.audit) == orjson.dumps(real.audit)
        assert twin.timers == real.timers
        assert orjson.dumps(copied.to_dict()) == orjson.dumps(state.to_dict())


# ------------------------------------------------------------------------------- 8. quiet hours


@PROPERTY
@given(key=engine_keys.filter(lambda k: policies()[k[1]].quiet_hours is not None), docs=event_logs())
def test_no_send_on_a_quiet_channel_inside_the_customers_quiet_hours(
    key: tuple[str, str], docs: list[dict[str, Any]]
) -> None:
    policy = policies()[key[1]]
    quiet = policy.quiet_hours
    assert quiet is not None
    window = (parse_clock(quiet.start), parse_clock(quiet.end))
    checked: list[Record] = []

    def check(outcome: Outcome) -> None:
        # The customer's zone as of this outcome (an identify may have just changed traits.timezone).
        zone, _ = customer_zone(outcome.state.profile, policy.default_timezone)
        for action in outcome.actions:
            if action["channel"] in quiet.channels:
                assert quiet_until(outcome.now, *window, zone) is None, (str(zone), action)
            checked.append(action)

    result = Simulator(make_engine(key), check).run(to_events(docs))
    assert len(checked) == len(result.actions)
    target(float(sum(r["kind"] == "deferred" for r in result.audit)), label="deferred sends")


# ----------------------------------------------------------------------- 9. emitted actions frozen


@PROPERTY
@given(key=engine_keys, docs=event_logs())
def test_an_emitted_action_never_changes_afterwards(key: tuple[str, str], docs: list[dict[str, Any]]) -> None:
    """Regression: `{{ profile.cart }}` once handed out the live list, so a later cart_add rewrote sent actions."""
    emitted: list[bytes] = []
    result = Simulator(make_engine(key), snapshotting(emitted)).run(to_events(docs))
    assert [orjson.dumps(a) for a in result.actions] == emitted
