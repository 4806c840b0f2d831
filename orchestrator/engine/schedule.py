"""When a scheduled journey's occurrences fall for one customer (the contract: contract/schedules.py).

A customer's entry instant for an occurrence is the occurrence in their zone (an `at` is the same instant for
everyone) plus a stable offset in `[0, spread)` from a hash of the customer key, the journey and the occurrence:
a replay gives the same instants, and a 2 h spread sends about evenly over 2 h. Each known customer's state holds
the next entry of each scheduled journey as a timer (`CustomerState.planned`), so an occurrence reaches every
member at their own instant, in event-time order with their own records, and exactly once, in `simulate` and in
the worker alike.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import date, timedelta

from orchestrator.contract.schedules import Schedule
from orchestrator.contract.values import DAYS
from orchestrator.engine.ids import unit_interval
from orchestrator.engine.localtime import local_instant
from orchestrator.timefmt import format_ms, from_ms, parse_clock

SCHEDULED = "s"  # the token prefix of a scheduled entry's timer
LATEST_ZONE_MS = 12 * 3_600_000  # UTC-12: no local time comes later than UTC plus this
LOOKAHEAD_DAYS = 8  # a recurring schedule with at least one day a week occurs within this many days


@dataclass(frozen=True, slots=True)
class Occurrence:
    label: str  # which occurrence: its local date (YYYY-MM-DD), or the instant of an `at`
    due: int  # this customer's entry instant (epoch ms)


def spread_offset(spread: int, jid: str, key: str, label: str) -> int:
    """A stable offset in [0, spread) ms for this customer, journey and occurrence."""
    return int(unit_interval("spread", jid, key, label) * spread) if spread else 0


def next_entry(schedule: Schedule, spread: int, jid: str, key: str, zone: zoneinfo.ZoneInfo, after: int,
               not_before: str = "") -> Occurrence | None:  # fmt: skip
    """The first occurrence whose entry instant for customer `key` in `zone` is strictly after `after` (None: the
    schedule has no more). `not_before`: the label of an occurrence not yet run: a customer who moves west, to a
    zone where an occurrence they had in the east is still ahead, does not get it twice."""
    if schedule.at is not None:
        label = format_ms(schedule.at)
        due = schedule.at + spread_offset(spread, jid, key, label)
        return Occurrence(label, due) if due > after else None
    hour, minute = parse_clock(schedule.time or "00:00")  # a form without `at` has a time (the contract checks)
    if schedule.date is not None:
        due = local_instant(date.fromisoformat(schedule.date), hour, minute, zone)
        due += spread_offset(spread, jid, key, schedule.date)
        return Occurrence(schedule.date, due) if due > after and schedule.date >= not_before else None
    weekdays = frozenset(DAYS.index(day) for day in schedule.days or DAYS)
    first = from_ms(after - spread).astimezone(zone).date() - timedelta(days=1)
    if schedule.from_ is not None:
        first = max(first, date.fromisoformat(schedule.from_))
    last = None if schedule.until is None else date.fromisoformat(schedule.until)
    for offset in range(LOOKAHEAD_DAYS + 2):
        day = first + timedelta(days=offset)
        if last is not None and day > last:
            return None
        if day.weekday() in weekdays and (label := day.isoformat()) >= not_before:
            due = local_instant(day, hour, minute, zone) + spread_offset(spread, jid, key, label)
            if due > after:
                return Occurrence(label, due)
    raise AssertionError("a schedule with at least one day a week occurs within LOOKAHEAD_DAYS")


def last_entry(schedule: Schedule, spread: int) -> int | None:
    """An instant after which no customer, in any zone, enters this schedule any more (None: it recurs for ever):
    nobody needs planning past it."""
    if schedule.at is not None:
        return schedule.at + spread
    hour, minute = parse_clock(schedule.time or "00:00")
    day = schedule.date if schedule.date is not None else schedule.until
    if day is None:
        return None
    return local_instant(date.fromisoformat(day), hour, minute, zoneinfo.ZoneInfo("UTC")) + LATEST_ZONE_MS + spread


def occurrence_end(schedule: Schedule, spread: int, label: str) -> int:
    """An instant after which no member of occurrence `label` enters, in any zone: when the occurrence is complete."""
    if schedule.at is not None:
        return schedule.at + spread
    hour, minute = parse_clock(schedule.time or "00:00")
    return local_instant(date.fromisoformat(label), hour, minute, zoneinfo.ZoneInfo("UTC")) + LATEST_ZONE_MS + spread
