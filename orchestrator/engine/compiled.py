"""A journey compiled into a flat table of steps addressed by path, each knowing the step after it.

A run's position is then one string (the step path), which keeps run state small and lets a
runs resume on exactly the version of the journey it entered.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from orchestrator.contract.conditions import (
    SEGMENT,
    Getter,
    Parts,
    Predicate,
    compile_condition,
    compile_parts,
    compile_path,
)
from orchestrator.contract.journeys import (
    AnyStep,
    DecideStep,
    ExitStep,
    IfStep,
    Journey,
    SendSpec,
    SendStep,
    SplitStep,
    WaitForStep,
    WaitStep,
    WaitUntilStep,
)
from orchestrator.contract.offers import Catalogue
from orchestrator.contract.segments import ALL
from orchestrator.contract.templates import Render, Text, compile_template, compile_text
from orchestrator.contract.values import DAYS, Recommend
from orchestrator.engine.policy import Limits, journey_limits
from orchestrator.timefmt import parse_clock


@dataclass(frozen=True, slots=True)
class Node:
    path: str
    name: str  # the step's id, else its path: what actions and audit records call it
    kind: str  # wait, wait_until, wait_for, send, decide, if, split, exit
    next: str | None  # where the run goes when this step is done (None: the run completes)
    duration: int = 0  # wait; wait_for timeout
    clock: tuple[int, int] = (0, 0)  # wait_until
    weekdays: frozenset[int] = frozenset()  # wait_until
    at: Getter | None = None  # wait_until at: where the time is
    anniversary: Getter | None = None  # wait_until anniversary: where the date is
    offset: int = 0  # wait_until at / anniversary
    event: str = ""  # wait_for
    test: Predicate | None = None  # wait_for where; if condition
    branch_a: str | None = None  # wait_for on_event; if then
    branch_b: str | None = None  # wait_for on_timeout; if else; decide on_none
    arms: tuple[tuple[float, str | None], ...] = ()  # split: (cumulative share, first step)
    send: SendSpec | None = None
    render: Render | None = None  # send: its data
    template: Text | None = None  # send: its template name
    recommend: Recommendation | None = None  # send
    offers: tuple[str, ...] = ()  # decide: the candidates, in the step's (or the catalogue's) order
    pick: int = 1  # decide
    explore: float = 0.0  # decide: percent


@dataclass(frozen=True, slots=True)
class Recommendation:
    items: Getter  # where the items to complement are
    top: int


def recommendation(spec: Recommend | None) -> Recommendation | None:
    return None if spec is None else Recommendation(compile_path(spec.for_), spec.top)


@dataclass(frozen=True, slots=True)
class CompiledJourney:
    spec: Journey
    first: str | None
    nodes: dict[str, Node]
    trigger_where: Parts  # the trigger's `where`, part by part (`not_entered` names the part that failed)
    becomes: Predicate | None  # a `becomes` trigger's condition
    exit_on: frozenset[str]
    limits: Limits
    waited_events: frozenset[str] = field(default_factory=frozenset)
    audience: Predicate | None = None  # a schedule trigger's segment (None: all, or no schedule)


Nodes = dict[str, Node]


class Library(NamedTuple):
    """What a journey's steps may name besides themselves: offers.yaml's offers, segments.yaml's segments."""

    catalogue: Catalogue
    segments: Mapping[str, Predicate]


def _compile_list(steps: Sequence[AnyStep], base: str, after: str | None, nodes: Nodes, library: Library
                  ) -> str | None:  # fmt: skip
    """Compile a list of steps whose last step continues at `after`; returns the first step's path."""
    paths = [f"{base}.{i}" for i in range(len(steps))]
    for i, step in enumerate(steps):
        following = paths[i + 1] if i + 1 < len(steps) else after
        nodes[paths[i]] = _compile_step(step, paths[i], following, nodes, library)
    return paths[0] if paths else after


def _compile_step(step: AnyStep, path: str, after: str | None, nodes: Nodes, library: Library) -> Node:
    name = step.id or path
    if isinstance(step, WaitStep):
        return Node(path, name, "wait", after, duration=step.wait)
    if isinstance(step, WaitUntilStep):
        until = step.wait_until
        days = frozenset(DAYS.index(d) for d in until.weekdays)
        return Node(path, name, "wait_until", after, clock=parse_clock(until.clock), weekdays=days,
                    at=None if until.at is None else compile_path(until.at), offset=until.offset,
                    anniversary=None if until.anniversary is None else compile_path(until.anniversary))
    if isinstance(step, WaitForStep):
        spec = step.wait_for
        return Node(
            path, name, "wait_for", after, duration=spec.timeout, event=spec.event,
            test=compile_condition(spec.where, library.segments) if spec.where else None,
            branch_a=_compile_list(step.on_event, f"{path}.on_event", after, nodes, library),
            branch_b=_compile_list(step.on_timeout, f"{path}.on_timeout", after, nodes, library),
        )  # fmt: skip
    if isinstance(step, SendStep):
        return Node(path, name, "send", after, send=step.send, render=compile_template(step.send.data),
                    template=compile_text(step.send.template), recommend=recommendation(step.send.recommend))
    if isinstance(step, DecideStep):
        decide = step.decide
        return Node(
            path, name, "decide", after, offers=library.catalogue.select(decide.offers), pick=decide.pick,
            explore=decide.explore,
            branch_b=_compile_list(step.on_none, f"{path}.on_none", after, nodes, library),
        )  # fmt: skip
    if isinstance(step, IfStep):
        return Node(
            path, name, "if", after, test=compile_condition(step.if_, library.segments),
            branch_a=_compile_list(step.then, f"{path}.then", after, nodes, library),
            branch_b=_compile_list(step.else_, f"{path}.else", after, nodes, library),
        )  # fmt: skip
    if isinstance(step, SplitStep):
        total = sum(arm.weight for arm in step.split)
        arms, cumulative = [], 0.0
        for i, arm in enumerate(step.split):
            cumulative += arm.weight / total
            arms.append((cumulative, _compile_list(arm.steps, f"{path}.split.{i}.steps", after, nodes, library)))
        return Node(path, name, "split", after, arms=tuple(arms))
    if isinstance(step, ExitStep):
        return Node(path, name, "exit", None)
    raise AssertionError(f"unhandled step type {type(step).__name__}")


def compile_journey(journey: Journey, catalogue: Catalogue | None = None,
                    segments: Mapping[str, Predicate] | None = None) -> CompiledJourney:  # fmt: skip
    nodes: Nodes = {}
    library = Library(catalogue or Catalogue(), segments or {})
    first = _compile_list(journey.steps, "steps", None, nodes, library)
    trigger = journey.trigger
    return CompiledJourney(
        spec=journey,
        first=first,
        nodes=nodes,
        trigger_where=compile_parts(trigger.where or {}, library.segments),
        becomes=None if trigger.becomes is None else compile_condition(trigger.becomes, library.segments),
        exit_on=frozenset(journey.exit_on),
        limits=journey_limits(journey),
        waited_events=frozenset(n.event for n in nodes.values() if n.kind == "wait_for"),
        audience=None if trigger.audience in (None, ALL) else compile_condition({SEGMENT: trigger.audience},
                                                                                 library.segments),
    )
