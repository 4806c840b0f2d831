"""Customer-local wall-clock arithmetic for `wait_until` and quiet hours."""

from __future__ import annotations

import zoneinfo
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Any

from orchestrator.timefmt import from_ms, to_ms


@lru_cache(maxsize=1024)
def _zone(name: str) -> zoneinfo.ZoneInfo | None:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


def customer_zone(profile: dict[str, Any], default: str) -> zoneinfo.ZoneInfo:
    """The customer's `traits.timezone` when it names a real zone, else the policy's default."""
    name = profile["traits"].get("timezone")
    zone = _zone(name) if isinstance(name, str) and name else None
    default_zone = _zone(default)
    assert default_zone is not None, "the policy's default_timezone is validated on load"
    return zone or default_zone


def _at(day: date, hour: int, minute: int, zone: zoneinfo.ZoneInfo) -> int:
    return to_ms(datetime.combine(day, time(hour, minute), tzinfo=zone))


def next_local_time(after: int, hour: int, minute: int, weekdays: frozenset[int], zone: zoneinfo.ZoneInfo) -> int:
    """The first HH:MM local time strictly after `after` on one of `weekdays` (0 = Monday)."""
    today = from_ms(after).astimezone(zone).date()
    for offset in range(8):
        day = today + timedelta(days=offset)
        if day.weekday() in weekdays:
            candidate = _at(day, hour, minute, zone)
            if candidate > after:
                return candidate
    raise AssertionError("a weekday set that is not empty matches within 8 days")


def quiet_until(now: int, start: tuple[int, int], end: tuple[int, int], zone: zoneinfo.ZoneInfo) -> int | None:
    """If `now` falls in the local window [start, end) (which may span midnight), when the window ends."""
    local = from_ms(now).astimezone(zone)
    minute = local.hour * 60 + local.minute
    begin, finish = start[0] * 60 + start[1], end[0] * 60 + end[1]
    if begin == finish:
        return None
    inside = begin <= minute < finish if begin < finish else (minute >= begin or minute < finish)
    if not inside:
        return None
    return next_local_time(now, end[0], end[1], frozenset(range(7)), zone)
