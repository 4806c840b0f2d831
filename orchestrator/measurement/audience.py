"""Who is in a segment at an instant: `orchestrator audience` and the scheduled triggers' audiences.

A customer is in an audience at `at` when they are known (a `customer_id`: anonymous visitors never are), their
first event is before `at`, they have not been erased since, and their profile as of `at` matches the segment
(time-relative conditions such as `profile.recent` counted at `at`). `all` is every such customer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator.contract.conditions import Predicate
from orchestrator.contract.segments import ALL
from orchestrator.engine.identity import is_anonymous
from orchestrator.engine.state import CustomerState

SHOWN = 20  # keys the terminal shows (`--json` gives every one)


def members(segments: Mapping[str, Predicate], states: Mapping[str, CustomerState], name: str, at: int) -> list[str]:
    """The keys of the known customers in segment `name` (or `all`) at `at`, in key order; `states` are the
    customers as of just before `at` (a replay up to `at - 1`)."""
    test = None if name == ALL else segments[name]
    return sorted(key for key, state in states.items()
                  if not is_anonymous(key) and (test is None or test(({}, {}, state.profile, at))))  # fmt: skip


def sizes(segments: Mapping[str, Predicate], states: Mapping[str, CustomerState], at: int) -> dict[str, int]:
    """Each segment's size at `at` (`states` as of just before it)."""
    known = [state.profile for key, state in states.items() if not is_anonymous(key)]
    return {name: sum(1 for profile in known if test(({}, {}, profile, at))) for name, test in segments.items()}


def member_of(segments: Mapping[str, Predicate], key: str, profile: Mapping[str, Any] | None,
              at: int) -> frozenset[str]:  # fmt: skip
    """The segments a customer is in at `at` (none when anonymous or without a state): the worker keeps each
    segment's size per partition from these, before and after each step, as it keeps the KPIs."""
    if profile is None or not segments or is_anonymous(key):
        return frozenset()
    return frozenset(name for name, test in segments.items() if test(({}, {}, profile, at)))
