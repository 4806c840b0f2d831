"""Identity as of an event's time (engine/history.py): gathered from the facts in any arrival order, it decides
exactly what one graph folded in `(occurred_at, event_id)` order decides, for every event."""

from __future__ import annotations

from random import Random
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.contract.events import event_from_document
from orchestrator.engine.history import CUSTOMER, AsOf, Fact, FactStore, apply, order_of, restricted
from orchestrator.engine.identity import resolve
from orchestrator.simulate import Simulator
from tests.strategies import engine_keys, event_logs, make_engine, to_events

IDENTIFIERS = ("anonymous_id:c1", "anonymous_id:c2", "email:e1", "email:e2", "loyalty_card:l1", "phone:p1")
CUSTOMERS = ("cu-1", "cu-2", "cu-3")

facts = st.builds(
    Fact,
    ts=st.integers(0, 40),
    event_id=st.text("abcdef", min_size=1, max_size=3),
    customer_id=st.none() | st.sampled_from(CUSTOMERS),
    identifiers=st.lists(st.sampled_from(IDENTIFIERS), min_size=1, max_size=3, unique=True).map(tuple),
    forget=st.sampled_from((False, False, False, True)),
)

forget_by_customer = st.builds(
    Fact, ts=st.integers(0, 40), event_id=st.text("abcdef", min_size=1, max_size=3),
    customer_id=st.sampled_from(CUSTOMERS), identifiers=st.just(()), forget=st.just(True),
)  # fmt: skip

logs = st.lists(facts | forget_by_customer, max_size=25, unique_by=lambda fact: fact.order)  # one event, one fact


def _sequential(log: list[Fact]) -> list[tuple[Fact, dict[str, str]]]:
    """The oracle: one graph, facts folded in order; for each fact, the graph it was resolved against."""
    graph: dict[str, str] = {}
    seen = []
    for fact in sorted(log, key=lambda f: (f.ts, f.event_id, f.customer_id or "", f.identifiers, f.forget)):
        seen.append((fact, dict(graph)))
        apply(graph, fact)
    return seen


@settings(max_examples=400, deadline=None)
@given(logs, st.randoms(use_true_random=False))
def test_as_of_resolution_equals_the_ordered_fold_whatever_the_arrival_order(log: list[Fact], rnd: Random) -> None:
    arrived = list(log)
    rnd.shuffle(arrived)
    store = FactStore()
    for fact in arrived:
        store.add(fact)
    for fact, before in _sequential(log):
        if not fact.identifiers:
            continue
        graph = store.as_of(fact.order, fact.identifiers)
        seen = restricted(graph, fact.identifiers)
        assert seen == restricted(before, fact.identifiers), fact
        expected = resolve(fact.customer_id, list(fact.identifiers), before)
        got = resolve(fact.customer_id, list(fact.identifiers), graph)
        assert (got.customer, got.links, got.merges, got.conflicts) == (
            expected.customer, expected.links, expected.merges, expected.conflicts)  # fmt: skip


def _resolved(fact: Fact, graph: dict[str, str]) -> tuple[Any, ...]:
    got = resolve(fact.customer_id, list(fact.identifiers), graph)
    return got.customer, got.links, got.merges, got.conflicts


@settings(max_examples=400, deadline=None)
@given(logs)
def test_erasure_keeps_every_later_resolution_and_names_nothing_up_to_the_forget(log: list[Fact]) -> None:
    """Each forget purges the history (as the customer agent does, in order): every event after it resolves as in
    the ordered fold, and no fact up to it names the erased customer or an identifier it owned then."""
    store = FactStore()
    for fact in log:
        store.add(fact)
    folded = _sequential(log)
    for forget, before in folded:
        if not forget.forget:
            continue
        graph = dict(before)
        customer = resolve(forget.customer_id, list(forget.identifiers), graph).customer if forget.identifiers \
            else forget.customer_id
        graph.update(resolve(forget.customer_id, list(forget.identifiers), before).links if forget.identifiers else {})
        owned = {i for i, owner in graph.items() if owner == customer}
        store.erase(forget)
        for fact, seen in folded:
            if fact.order > forget.order and fact.identifiers:
                assert _resolved(fact, store.as_of(fact.order, fact.identifiers)) == _resolved(fact, seen), fact
        for listed in store.lists.values():
            for fact in listed:
                if fact.order <= forget.order:
                    named = {*fact.identifiers, *(i for i, _ in fact.links)}
                    owners = {fact.customer_id, *(c for _, c in fact.links)}
                    assert customer not in owners and not owned & named, fact


def test_erasure_leaves_one_snapshot_without_the_customer() -> None:
    store = FactStore()
    store.add(Fact(100, "a", "cu-1", ("loyalty_card:l1", "email:e1")))
    store.add(Fact(200, "b", "cu-2", ("loyalty_card:l1", "email:e2")))  # the card moves to cu-2 (a conflict)
    forget = Fact(300, "bye", "cu-2", (), forget=True)
    store.add(forget)
    store.erase(forget)
    assert store.as_of((400, "c"), ["loyalty_card:l1", "email:e1", "email:e2"]) == {"email:e1": "cu-1"}
    snapshot = Fact(300, "bye", None, (), links=(("email:e1", "cu-1"),))
    assert {key: facts for key, facts in store.lists.items() if facts} == {
        "email:e1": {snapshot}, CUSTOMER + "cu-1": {snapshot}}
    assert Fact.decode(snapshot.encode(), 300) == snapshot


def test_a_link_made_later_does_not_reach_back() -> None:
    store = FactStore()
    store.add(Fact(200, "sign-in", "cu-1", ("anonymous_id:c1",)))
    store.add(Fact(100, "browse", None, ("anonymous_id:c1",)))
    assert store.as_of((100, "browse"), ["anonymous_id:c1"]) == {}
    assert store.as_of((300, "buy"), ["anonymous_id:c1"]) == {"anonymous_id:c1": "cu-1"}


def test_a_forget_by_customer_id_unlinks_what_it_owned_from_then_on() -> None:
    store = FactStore()
    store.add(Fact(100, "a", "cu-1", ("email:e1",)))
    store.add(Fact(200, "bye", "cu-1", (), forget=True))
    assert store.as_of((150, "x"), ["email:e1"]) == {"email:e1": "cu-1"}
    assert store.as_of((250, "x"), ["email:e1"]) == {}
    assert CUSTOMER + "cu-1" in store.lists


def test_gathering_follows_an_anonymous_chain() -> None:
    gathering = AsOf((500, "z"), ["anonymous_id:c2"])
    store = FactStore()
    store.add(Fact(100, "a", "cu-1", ("email:e1",)))
    store.add(Fact(200, "b", None, ("email:e1", "anonymous_id:c1")))
    store.add(Fact(300, "c", None, ("anonymous_id:c1", "anonymous_id:c2")))
    while missing := gathering.missing():
        for key in missing:
            gathering.add(key, store.lists.get(key, ()))
    assert gathering.graph()["anonymous_id:c2"] == "cu-1"


# ------------------------------------------------------- simulate --arrival-order: the worker's lateness rule


@settings(max_examples=60, deadline=None, derandomize=True)
@given(key=engine_keys, docs=event_logs(min_customers=1, max_customers=4), lateness=st.integers(0, 3_600_000))
def test_a_log_read_in_time_order_is_never_late(
    key: tuple[str, str], docs: list[dict[str, Any]], lateness: int
) -> None:
    """Read in (time, id) order, nothing is late: the arrival-order replay is the ordinary one."""
    events = to_events(docs)
    ordinary = Simulator(make_engine(key), record_events=True).run(events)
    arrived = Simulator(make_engine(key), record_events=True).run_in_arrival_order(events, lateness)
    assert orjson.dumps(arrived.actions) == orjson.dumps(ordinary.actions)
    assert orjson.dumps(arrived.audit) == orjson.dumps(ordinary.audit)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(key=engine_keys, docs=event_logs(min_customers=1, max_customers=4), rnd=st.randoms(use_true_random=False))
def test_any_arrival_order_within_the_lateness_bound_is_the_ordinary_replay(
    key: tuple[str, str], docs: list[dict[str, Any]], rnd: Random
) -> None:
    """Shuffled, but with a lateness bound wider than the log: every event waits for the rest, as in the worker."""
    events = to_events(docs)
    shuffled = list(events)
    rnd.shuffle(shuffled)
    ordinary = Simulator(make_engine(key)).run(events)
    arrived = Simulator(make_engine(key)).run_in_arrival_order(shuffled, 10**13)
    assert orjson.dumps(arrived.actions) == orjson.dumps(ordinary.actions)


def test_a_sign_in_read_late_does_not_reach_back() -> None:
    """The cookie's cart (10:10) was resolved, anonymous, before the sign-in dated 10:00 was read: the cart stays
    the anonymous visitor's (as of 10:00 the cookie had no event yet, so the sign-in merges nothing)."""
    docs = [
        {"event_id": "cart", "type": "cart_add", "occurred_at": "2026-03-02T10:10:00Z", "channel": "web",
         "anonymous_id": "ck-1", "properties": {"sku": "S", "price": 40}},
        {"event_id": "later", "type": "page_view", "occurred_at": "2026-03-02T11:00:00Z", "channel": "web",
         "anonymous_id": "ck-2", "properties": {}},
        {"event_id": "sign-in", "type": "login", "occurred_at": "2026-03-02T10:00:00Z", "channel": "app",
         "customer_id": "c-1", "anonymous_id": "ck-1", "properties": {}},
    ]  # fmt: skip
    events = [event_from_document(doc) for doc in docs]
    in_time = Simulator(make_engine(("code", "open")), record_events=True).run(sorted(events, key=order_of))
    late = Simulator(make_engine(("code", "open")), record_events=True).run_in_arrival_order(events, 60_000)
    assert "anon:ck-1" not in in_time.states  # in time, the sign-in came first: the cart is c-1's
    assert {"anon:ck-1", "c-1"} <= set(late.states)
    assert not [r for r in late.audit if r["kind"] == "merged"]
    cart = next(r for r in late.audit if r["kind"] == "event" and r["event_id"] == "cart")
    assert cart["customer"] == "anon:ck-1"
