"""Who a person was at a given moment: identity resolution as of an event's time, from the history of links.

Every event that carries identifiers (and every `forget`) is a `Fact`. The identity graph at any moment is the
fold of the facts before it, in `(occurred_at, event_id)` order, by `apply` (the same `resolve` `simulate` runs,
then a forget's unlinking). A worker cannot keep one graph in that order (its partitions arrive in any order, and
other workers read the others), so it keeps the facts instead, each listed under every key it names, and resolves
an event as of its own order: `AsOf` gathers the facts before it that can bear on its identifiers (its connected
part of the history, key by key: in the worker, one Redis round trip per step for a whole batch) and folds them.
A fact dated after the event changes nothing of it, whenever it arrived: a merge at `t` moves what happened before
`t`, and the identifier's records dated after `t` resolve to the known customer wherever they were first read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from orchestrator.contract.events import Event
from orchestrator.engine.identity import Resolution, is_anonymous, named_after, resolve

FORGET = "forget"
CUSTOMER = "customer:"  # the key a customer's own facts are listed under, next to their identifiers'


@dataclass(frozen=True, slots=True)
class Fact:
    """What one event says about identity: its customer_id (if any) and identifier keys, at its time."""

    ts: int
    event_id: str
    customer_id: str | None
    identifiers: tuple[str, ...]
    forget: bool = False
    links: tuple[tuple[str, str], ...] = ()  # a snapshot (an erasure's): these links, as they were then

    @property
    def order(self) -> tuple[int, str]:
        return self.ts, self.event_id

    def keys(self) -> list[str]:
        """Where the fact is listed: under each identifier, and under its customer (where a forget is found)."""
        if self.links:  # and where a later fact reaches each customer: a known one's key, an anonymous one's name
            keys = [identifier for identifier, _ in self.links]
            for owner in sorted({customer for _, customer in self.links}):
                keys.extend(named_after(owner) if is_anonymous(owner) else [CUSTOMER + owner])
            return list(dict.fromkeys(keys))
        own = [CUSTOMER + self.customer_id] if self.customer_id is not None else []
        return [*self.identifiers, *own]

    def encode(self) -> bytes:
        fields: list[Any] = [self.event_id, self.customer_id, self.identifiers, self.forget]
        return orjson.dumps([*fields, self.links] if self.links else fields)

    @classmethod
    def decode(cls, raw: bytes | str, ts: int) -> Fact:
        event_id, customer_id, identifiers, forget, *links = orjson.loads(raw)
        snapshot = tuple((identifier, customer) for identifier, customer in links[0]) if links else ()
        return cls(ts, event_id, customer_id, tuple(identifiers), forget, snapshot)


def order_of(event: Event) -> tuple[int, str]:
    """The order everything runs in: event time, then event id (a rule every worker can know)."""
    return event.ts, event.id


def fact_of(event: Event, identifiers: list[str]) -> Fact | None:
    """The event's fact, or None for one that changes no link (a known customer's event without identifiers)."""
    forget = event.type == FORGET
    if not identifiers and not forget:
        return None
    return Fact(event.ts, event.id, event.data.get("customer_id"), tuple(identifiers), forget)


def apply(graph: dict[str, str], fact: Fact) -> None:
    """One fact folded into the graph: `resolve`'s links; a forget then unlinks every identifier of its customer;
    a snapshot's links are set as they are."""
    if fact.links:
        graph.update(fact.links)
        return
    if fact.identifiers:
        resolution = resolve(fact.customer_id, list(fact.identifiers), graph)
    else:
        assert fact.customer_id is not None  # an event names a customer_id or an identifier (contract/events.py)
        resolution = Resolution(fact.customer_id)
    graph.update(resolution.links)
    if fact.forget:
        unlink(graph, resolution.customer)


def unlink(graph: dict[str, str], customer: str) -> None:
    """An erasure: no identifier points to `customer` any more; its later events start a fresh customer."""
    for identifier in [i for i, owner in graph.items() if owner == customer]:
        del graph[identifier]


def _sort_key(fact: Fact) -> tuple[int, str, str, tuple[str, ...], bool, tuple[tuple[str, str], ...]]:
    """`order`, then the rest: two facts of one event id and time (a producer's duplicate) fold in one way."""
    return fact.ts, fact.event_id, fact.customer_id or "", fact.identifiers, fact.forget, fact.links


class AsOf:
    """The facts before `order` connected to some identifiers, gathered key by key; then the graph they make.

    Drive it by asking `missing()` for the keys to read, and giving each key's facts (any of them: those not
    before `order` are ignored) to `add`, until nothing is missing."""

    def __init__(self, order: tuple[int, str], identifiers: Iterable[str]) -> None:
        self.order = order
        self.wanted = set(identifiers)
        self.read: set[str] = set()
        self.facts: set[Fact] = set()

    def missing(self) -> set[str]:
        return self.wanted - self.read

    def add(self, key: str, facts: Iterable[Fact]) -> None:
        self.read.add(key)
        for fact in facts:
            if fact.order < self.order and fact not in self.facts:
                self.facts.add(fact)
                self.wanted.update(fact.keys())

    def graph(self) -> dict[str, str]:
        """The graph as of `order`, exact on every identifier gathered (the others never bore on these)."""
        graph: dict[str, str] = {}
        for fact in sorted(self.facts, key=_sort_key):
            apply(graph, fact)
        return graph


class FactStore:
    """The facts in memory, listed by key: what Redis holds for the worker, for `simulate` and tests."""

    def __init__(self) -> None:
        self.lists: dict[str, set[Fact]] = {}

    def add(self, fact: Fact) -> None:
        for key in fact.keys():  # noqa: SIM118 (a Fact is no mapping)
            self.lists.setdefault(key, set()).add(fact)

    def as_of(self, order: tuple[int, str], identifiers: Iterable[str]) -> dict[str, str]:
        return self.gather(AsOf(order, identifiers)).graph()

    def gather(self, gathering: AsOf) -> AsOf:
        while missing := gathering.missing():
            for key in missing:
                gathering.add(key, self.lists.get(key, ()))
        return gathering

    def erase(self, forget: Fact) -> None:
        """As serving/history.py does when the customer agent runs a forget."""
        gone = self.gather(AsOf(through(forget.order), forget.keys())).facts
        snapshot = erasure(gone, forget.order)
        for fact in gone:
            for key in fact.keys():  # noqa: SIM118 (a Fact is no mapping)
                self.lists[key].discard(fact)
        if snapshot is not None:
            self.add(snapshot)


def through(order: tuple[int, str]) -> tuple[int, str]:
    """The least order after `order` (a string's successor is itself plus NUL): `AsOf(through(o))` includes `o`."""
    return order[0], order[1] + "\x00"


def erasure(facts: Iterable[Fact], forget: tuple[int, str]) -> Fact | None:
    """Right to erasure in the history: what replaces `facts` (those up to and including the forget at `forget`,
    connected to it: an `AsOf(through(forget))` gathering). Their fold, a snapshot of the graph just after the
    forget: every link as it was then, and none of the erased customer's (the forget unlinked them). Resolution
    after the forget is what it was; nothing up to it names the customer or an identifier it owned any more."""
    graph: dict[str, str] = {}
    for fact in sorted(facts, key=_sort_key):
        apply(graph, fact)
    return Fact(forget[0], forget[1], None, (), links=tuple(sorted(graph.items()))) if graph else None


def restricted(graph: Mapping[str, str], identifiers: Iterable[str]) -> dict[str, str]:
    return {i: graph[i] for i in identifiers if i in graph}
