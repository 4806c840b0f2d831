"""Customer-local wall-clock arithmetic for `wait_until`, quiet hours and scheduled triggers."""

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


def customer_zone(profile: dict[str, Any], default: str) -> tuple[zoneinfo.ZoneInfo, str | None]:
    """The customer's `traits.timezone` when it names a real zone, else the policy's default; and the bad name, when
    the trait is set but names no zone (the engine audits it: `bad_timezone`)."""
    name = profile["traits"].get("timezone")
    zone = _zone(name) if isinstance(name, str) and name else None
    default_zone = _zone(default)
    assert default_zone is not None, "the policy's default_timezone is validated on load"
    bad = None if zone is not None or name is None or name == "" else str(name)
    return zone or default_zone, bad


def local_instant(day: date, hour: int, minute: int, zone: zoneinfo.ZoneInfo) -> int:
    """A local time as epoch ms. A time that does not exist (the hour skipped when clocks go forward) comes out
    shifted forward by the gap (02:30 -> 03:30); a time that occurs twice (clocks go back) is the first one."""
    return to_ms(datetime.combine(day, time(hour, minute), tzinfo=zone))


def next_local_time(after: int, hour: int, minute: int, weekdays: frozenset[int], zone: zoneinfo.ZoneInfo) -> int:
    """The first HH:MM local time strictly after `after` on one of `weekdays` (0 = Monday)."""
    today = from_ms(after).astimezone(zone).date()
    for offset in range(8):
        day = today + timedelta(days=offset)
        if day.weekday() in weekdays:
            candidate = local_instant(day, hour, minute, zone)
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


def in_window(now: int, start: tuple[int, int], end: tuple[int, int], weekdays: frozenset[int],
              zone: zoneinfo.ZoneInfo) -> bool:  # fmt: skip
    """Whether `now` falls in the local window [start, end) opened on one of `weekdays`; a window whose end is not
    after its start runs past midnight into the next day."""
    local = from_ms(now).astimezone(zone)
    minute = local.hour * 60 + local.minute
    begin, finish = start[0] * 60 + start[1], end[0] * 60 + end[1]
    day = local.weekday()
    if begin < finish:
        return day in weekdays and begin <= minute < finish
    return (day in weekdays and minute >= begin) or ((day - 1) % 7 in weekdays and minute < finish)


def window_opens(now: int, start: tuple[int, int], end: tuple[int, int], weekdays: frozenset[int],
                 zone: zoneinfo.ZoneInfo) -> int | None:  # fmt: skip
    """None when `now` is inside the send window, else when it next opens."""
    if in_window(now, start, end, weekdays, zone):
        return None
    return next_local_time(now, start[0], start[1], weekdays, zone)


def next_anniversary(after: int, month: int, day: int, hour: int, minute: int, zone: zoneinfo.ZoneInfo) -> int:
    """The first yearly recurrence of month-day at HH:MM local time strictly after `after`. February 29 recurs on
    February 28 in years that have none."""
    year = from_ms(after).astimezone(zone).year
    for candidate_year in range(year, year + 3):
        leap = candidate_year % 4 == 0 and (candidate_year % 100 != 0 or candidate_year % 400 == 0)
        on = date(candidate_year, month, 28 if (month, day) == (2, 29) and not leap else day)
        moment = local_instant(on, hour, minute, zone)
        if moment > after:
            return moment
    raise AssertionError("a date recurs within two years")
