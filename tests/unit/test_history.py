"""Identity as of an event's time (engine/history.py): gathered from the facts in any arrival order, it decides
exactly what one graph folded in `(occurred_at, event_id)` order decides, for every event."""

from __future__ import annotations

from random import Random

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.engine.history import CUSTOMER, AsOf, Fact, FactStore, apply, restricted
from orchestrator.engine.identity import resolve

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
