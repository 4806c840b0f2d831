"""When a `wait_until` step resumes: a local time of day, the time at a path, or a date's next anniversary."""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from datetime import date

from orchestrator.contract.conditions import Scope
from orchestrator.engine.compiled import Node
from orchestrator.engine.localtime import next_anniversary, next_local_time
from orchestrator.timefmt import parse_rfc3339, to_ms


def _date(value: object) -> date | None:
    if not isinstance(value, str) or len(value) != 10:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def wait_until_due(node: Node, scope: Scope, now: int, zone: Callable[[], zoneinfo.ZoneInfo]) -> int | None:
    """The due time (it may be past: the run then goes on at once); None when the path holds no valid time or date
    (the run exits, reason `no_date`). `zone` is asked only when a local time is computed."""
    if node.at is not None:
        value = node.at(scope)
        if not isinstance(value, str):
            return None
        try:
            return to_ms(parse_rfc3339(value)) + node.offset
        except ValueError:
            return None
    if node.anniversary is not None:
        day = _date(node.anniversary(scope))
        if day is None:
            return None
        return next_anniversary(now, day.month, day.day, *node.clock, zone()) + node.offset
    return next_local_time(now, *node.clock, node.weekdays, zone())
