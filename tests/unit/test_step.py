"""The per-customer step (engine/step.py) that `simulate` and the worker share: merges, erasure, timers, KPIs."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.contract.events import event_from_document
from orchestrator.engine import CustomerState, Engine, Timer
from orchestrator.engine.step import Absorb, Handover, step
from orchestrator.measurement.kpis import Kpis, contribution
from orchestrator.measurement.report import kpis_of
from orchestrator.simulate import Simulator
from tests.helpers import OPEN_POLICY, journey
from tests.strategies import engine_keys, event_logs, make_engine, to_events
from tests.unit.test_properties import PROPERTY

CART = journey("""
id: cart
trigger: {event: cart_add}
exit_on: [purchase]
steps:
  - wait: 30m
  - send: {channel: email, template: reminder}
""")
ENGINE = Engine([CART], OPEN_POLICY)
T0 = 1_772_445_600_000  # 2026-03-02T10:00:00Z


def event(event_id: str, type_: str, minutes: int, **fields: Any) -> Any:
    at = f"2026-03-02T{10 + minutes // 60:02d}:{minutes % 60:02d}:00Z"
    return event_from_document({"event_id": event_id, "type": type_, "occurred_at": at, "channel": "web",
                                "properties": fields.pop("properties", {}), **fields})  # fmt: skip


def cart(event_id: str, minutes: int, **who: Any) -> Any:
    return event(event_id, "cart_add", minutes, properties={"sku": "S", "price": 40}, **who)


def test_an_event_schedules_a_timer_and_counts_the_customer() -> None:
    done = step(ENGINE, None, cart("e1", 0, customer_id="c-1"))
    assert done.state is not None and done.key == "c-1" and not done.erased
    assert [t.due for t in done.scheduled] == [T0 + 30 * 60_000] and done.cancelled == []
    assert done.audit[0]["kind"] == "event" and done.audit[1]["kind"] == "entered"
    assert done.kpi_delta == contribution(done.state.profile) + Kpis().counts + _audit_counts(done.audit)


def _audit_counts(records: list[dict[str, Any]]) -> Any:
    kpis = Kpis()
    kpis.add_audit(records)
    return kpis.counts


def test_a_timer_fires_at_its_due_time_and_is_cancelled_from_the_index() -> None:
    first = step(ENGINE, None, cart("e1", 0, customer_id="c-1"))
    (timer,) = first.scheduled
    fired = step(ENGINE, first.state, timer)
    assert [a["template"] for a in fired.actions] == ["reminder"]
    assert fired.actions[0]["at"] == "2026-03-02T10:30:00Z"
    assert fired.cancelled == [timer] and fired.scheduled == []


def test_a_timer_of_a_customer_with_no_state_is_skipped() -> None:
    done = step(ENGINE, None, Timer(T0, "gone", "cart", "1.1"))
    assert done.skipped and done.state is None and done.outcomes == [] and not done.kpi_delta


def test_an_event_past_a_due_timer_fires_it_first() -> None:
    first = step(ENGINE, None, cart("e1", 0, customer_id="c-1"))
    later = step(ENGINE, first.state, event("e2", "page_view", 45, customer_id="c-1"))
    assert [a["at"] for a in later.actions] == ["2026-03-02T10:30:00Z"]
    kinds = [r["kind"] for r in later.audit]
    assert kinds.index("sent") < kinds.index("event")  # the timer's decisions, then the event's


def test_a_handover_leaves_with_the_state_and_its_timers_and_the_absorb_brings_them_in() -> None:
    anonymous = step(ENGINE, None, cart("e1", 0, anonymous_id="ck-9")).state
    assert anonymous is not None
    before = contribution(anonymous.profile)
    login = event("e2", "login", 5, customer_id="c-42", anonymous_id="ck-9")
    handed = step(ENGINE, anonymous, Handover(anonymous.key, "c-42", login.ts, login))
    assert handed.state is None and not handed.erased and handed.forward is not None
    assert len(handed.cancelled) == 1 and handed.scheduled == []
    assert handed.kpi_delta == Kpis({k: -n for k, n in before.items()}).counts
    forward = handed.forward
    assert (forward.customer, forward.source, forward.event) == ("c-42", anonymous.key, login)
    assert forward.state is not None
    absorbed = step(ENGINE, None, orjson_round_trip(forward))
    assert absorbed.state is not None and absorbed.key == "c-42"
    assert [r["kind"] for r in absorbed.audit][:3] == ["merged", "merged", "event"]  # the merge, its run, the event
    assert [(t.customer, t.due) for t in absorbed.scheduled] == [("c-42", T0 + 30 * 60_000)]
    assert absorbed.state.profile["cart_value"] == 40


def orjson_round_trip(item: Absorb) -> Absorb:
    """As the worker sends it: the state travels as JSON."""
    state = None if item.state is None else orjson.loads(orjson.dumps(item.state))
    return Absorb(item.customer, item.source, state, item.ts, item.event)


def test_forget_erases_the_state_cancels_every_timer_and_takes_the_customer_out_of_the_kpis() -> None:
    state = step(ENGINE, None, cart("e1", 0, customer_id="c-1")).state
    assert state is not None
    before = contribution(state.profile)
    done = step(ENGINE, state, event("e2", "forget", 1, customer_id="c-1"))
    assert done.erased and done.state is None and len(done.cancelled) == 1 and done.actions == []
    assert [r["kind"] for r in done.audit] == ["event", "erased"]
    expected = Kpis({k: -n for k, n in before.items()})
    expected.add_audit(done.audit)
    assert done.kpi_delta == expected.counts


# ------------------------------------------------------------------------------------------------- properties


@st.composite
def logs_with_merges_and_erasures(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Realistic logs in which known customers now and then reveal an anonymous visitor, or ask to be forgotten."""
    docs = draw(event_logs(min_customers=2, max_customers=5))
    for doc in docs:
        if "customer_id" in doc and draw(st.integers(0, 6)) == 0:
            doc["anonymous_id"] = draw(st.sampled_from(("a-1", "a-2")))
    if draw(st.booleans()):
        victim = draw(st.sampled_from([d for d in docs if "customer_id" in d] or docs))
        forget = {**victim, "event_id": "forget-1", "type": "forget", "properties": {}}
        docs.insert(draw(st.integers(0, len(docs))), forget)
    return docs


@PROPERTY
@given(key=engine_keys, docs=logs_with_merges_and_erasures())
def test_folding_every_steps_kpi_delta_gives_the_kpis_report_computes(key: tuple[str, str], docs: Any) -> None:
    """What the worker's `kpis` table adds up, step by step, is what `report` computes from the finished log."""
    result = Simulator(make_engine(key), count_kpis=True, record_events=True).run(to_events(docs))
    assert Kpis(result.kpi_counts).counts == kpis_of(result).counts


@PROPERTY
@given(key=engine_keys, docs=logs_with_merges_and_erasures())
def test_states_stored_as_json_between_steps_change_nothing(key: tuple[str, str], docs: Any) -> None:
    """The worker stores each state as JSON between steps (and may be restarted at any step): the same steps on
    round-tripped states give the same actions, audit and final states as the simulator keeps in memory."""
    events = to_events(docs)
    plain = Simulator(make_engine(key), record_events=True).run(events)
    stored = RoundTripping(make_engine(key), record_events=True)
    again = stored.run(events)
    assert orjson.dumps(again.actions) == orjson.dumps(plain.actions)
    assert orjson.dumps(again.audit) == orjson.dumps(plain.audit)
    assert {k: s.to_dict() for k, s in again.states.items()} == {k: s.to_dict() for k, s in plain.states.items()}


class RoundTripping(Simulator):
    """A simulator whose table, like the worker's, holds each state as it would come back from its changelog."""

    def _apply(self, item: Any, late: Any = None) -> Any:
        states = self.result.states
        if item.customer in states:
            states[item.customer] = CustomerState.from_dict(orjson.loads(orjson.dumps(states[item.customer].to_dict())))
        return super()._apply(item, late)
