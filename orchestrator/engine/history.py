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

import orjson

from orchestrator.contract.events import Event
from orchestrator.engine.identity import Resolution, resolve

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

    @property
    def order(self) -> tuple[int, str]:
        return self.ts, self.event_id

    def keys(self) -> list[str]:
        """Where the fact is listed: under each identifier, and under its customer (where a forget is found)."""
        own = [CUSTOMER + self.customer_id] if self.customer_id is not None else []
        return [*self.identifiers, *own]

    def encode(self) -> bytes:
        return orjson.dumps([self.event_id, self.customer_id, self.identifiers, self.forget])

    @classmethod
    def decode(cls, raw: bytes | str, ts: int) -> Fact:
        event_id, customer_id, identifiers, forget = orjson.loads(raw)
        return cls(ts, event_id, customer_id, tuple(identifiers), forget)


def order_of(event: Event) -> tuple[int, str]:
    """The order everything runs in: event time, then event id (a rule every worker can know)."""
    return event.ts, event.id


def fact_of(event: Event, identifiers: list[str]) -> Fact | None:
    """The event's fact, or None for one that changes no link (a known customer's event without identifiers)."""
    forget = event.type == FORGET
    if not identifiers and not forget:
        return None
    return Fact(event.ts, event.id, event.data.get("customer_id"), tuple(identifiers), forget)


def apply(graph: dict[str, str], fact: Fact) -> Resolution:
    """One fact folded into the graph: `resolve`'s links; a forget then unlinks every identifier of its customer."""
    if fact.identifiers:
        resolution = resolve(fact.customer_id, list(fact.identifiers), graph)
    else:
        assert fact.customer_id is not None  # an event names a customer_id or an identifier (contract/events.py)
        resolution = Resolution(fact.customer_id)
    graph.update(resolution.links)
    if fact.forget:
        unlink(graph, resolution.customer)
    return resolution


def unlink(graph: dict[str, str], customer: str) -> None:
    """An erasure: no identifier points to `customer` any more; its later events start a fresh customer."""
    for identifier in [i for i, owner in graph.items() if owner == customer]:
        del graph[identifier]


def _sort_key(fact: Fact) -> tuple[int, str, str, tuple[str, ...], bool]:
    """`order`, then the rest: two facts of one event id and time (a producer's duplicate) fold in one way."""
    return fact.ts, fact.event_id, fact.customer_id or "", fact.identifiers, fact.forget


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
        gathering = AsOf(order, identifiers)
        while missing := gathering.missing():
            for key in missing:
                gathering.add(key, self.lists.get(key, ()))
        return gathering.graph()


def restricted(graph: Mapping[str, str], identifiers: Iterable[str]) -> dict[str, str]:
    return {i: graph[i] for i in identifiers if i in graph}
