"""`wait_until` at a time or a date's anniversary, and local times around daylight-saving changes."""

from __future__ import annotations

import zoneinfo

import pytest
from pydantic import ValidationError

from orchestrator.engine.localtime import next_anniversary, next_local_time
from orchestrator.timefmt import format_ms, parse_rfc3339, to_ms
from tests.helpers import ev, journey, kinds, policy, run, sends

ROME = zoneinfo.ZoneInfo("Europe/Rome")
REMINDER = """
id: reminder
trigger: {event: appointment_booked}
steps:
  - wait_until: WAIT
  - send: {channel: email, template: t}
"""


def ms(text: str) -> int:
    return to_ms(parse_rfc3339(text))


def booked(at: str, **props: object):  # type: ignore[no-untyped-def]
    return ev("appointment_booked", at, **props)


def test_wait_until_at_a_path_with_an_offset() -> None:
    j = journey(REMINDER.replace("WAIT", "{at: entry.properties.appointment_at, offset: -1d}"))
    result = run(j, [booked("2026-03-01T10:00:00Z", appointment_at="2026-03-10T15:30:00+01:00")])
    assert sends(result) == [("2026-03-09T14:30:00Z", "email", "t")]


def test_wait_until_a_time_already_past_goes_on_at_once() -> None:
    j = journey(REMINDER.replace("WAIT", "{at: entry.properties.appointment_at, offset: -1d}"))
    result = run(j, [booked("2026-03-10T10:00:00Z", appointment_at="2026-03-10T15:30:00Z")])
    assert sends(result) == [("2026-03-10T10:00:00Z", "email", "t")]


@pytest.mark.parametrize("value", [None, "next tuesday", "2026-03-10T15:30:00", 17])
def test_wait_until_without_a_valid_time_exits_no_date(value: object) -> None:
    j = journey(REMINDER.replace("WAIT", "{at: entry.properties.appointment_at}"))
    props = {} if value is None else {"appointment_at": value}
    result = run(j, [booked("2026-03-01T10:00:00Z", **props)])
    assert result.actions == [] and [r["reason"] for r in kinds(result, "exited")] == ["no_date"]


BIRTHDAY = """
id: birthday
trigger: {event: identify}
steps:
  - wait_until: {anniversary: profile.traits.birthday, time: "10:00", offset: -7d}
  - send: {channel: email, template: t}
"""


def test_anniversary_is_the_next_recurrence_in_local_time_shifted() -> None:
    pol = policy("consent_required: []\ndefault_timezone: Europe/Rome")
    result = run(journey(BIRTHDAY), [ev("identify", "2026-03-01T10:00:00Z", birthday="1990-06-20")], pol)
    assert sends(result) == [("2026-06-13T08:00:00Z", "email", "t")]  # 10:00 Rome in summer is 08:00Z
    # The birthday is in 3 days: its recurrence is this year's, 7 days before is past: at once.
    result = run(journey(BIRTHDAY), [ev("identify", "2026-06-17T10:00:00Z", birthday="1990-06-20")], pol)
    assert sends(result) == [("2026-06-17T10:00:00Z", "email", "t")]
    # Today is the birthday, after 10:00: next year's.
    result = run(journey(BIRTHDAY), [ev("identify", "2026-06-20T12:00:00Z", birthday="1990-06-20")], pol)
    assert sends(result) == [("2027-06-13T08:00:00Z", "email", "t")]


@pytest.mark.parametrize("value", ["20-06-1990", "1990-02-30", "", 19900620])
def test_anniversary_of_no_date_exits(value: object) -> None:
    result = run(journey(BIRTHDAY), [ev("identify", "2026-03-01T10:00:00Z", birthday=value)])
    assert [r["reason"] for r in kinds(result, "exited")] == ["no_date"]


def test_february_29_recurs_on_february_28_in_other_years() -> None:
    utc = zoneinfo.ZoneInfo("UTC")
    assert format_ms(next_anniversary(ms("2026-01-01T00:00:00Z"), 2, 29, 9, 0, utc)) == "2026-02-28T09:00:00Z"
    assert format_ms(next_anniversary(ms("2027-03-01T00:00:00Z"), 2, 29, 9, 0, utc)) == "2028-02-29T09:00:00Z"


def test_local_times_across_daylight_saving_changes() -> None:
    every = frozenset(range(7))
    # 2026-03-29 02:30 does not exist in Rome (02:00 -> 03:00): shifted forward by the gap, to 03:30 local.
    assert format_ms(next_local_time(ms("2026-03-29T00:00:00Z"), 2, 30, every, ROME)) == "2026-03-29T01:30:00Z"
    # 2026-10-25 02:30 occurs twice (03:00 -> 02:00): the first one, 02:30 summer time.
    assert format_ms(next_local_time(ms("2026-10-24T22:00:00Z"), 2, 30, every, ROME)) == "2026-10-25T00:30:00Z"


def test_wait_until_forms_are_checked() -> None:
    for bad, words in [("{at: entry.x, time: '10:00'}", "do not apply"), ("{at: entry.x, anniversary: profile.y}",
                       "not both"), ("{days: [mon]}", "needs time"), ("{time: '10:00', offset: 1d}", "offset applies"),
                       ("{at: entry.x, offset: soon}", "bad duration"), ("{anniversary: profile.b, days: [mon]}",
                       "once a year")]:  # fmt: skip
        with pytest.raises(ValidationError, match=words):
            journey(REMINDER.replace("WAIT", bad))


def test_a_bad_timezone_is_audited_and_the_default_used() -> None:
    j = journey(REMINDER.replace("WAIT", '{time: "10:00"}').replace("appointment_booked", "identify"))
    result = run(j, [ev("identify", "2026-03-01T12:00:00Z", timezone="Europe/Rom")])
    (bad,) = kinds(result, "bad_timezone")
    assert bad["timezone"] == "Europe/Rom" and bad["used"] == "UTC"
    assert sends(result) == [("2026-03-02T10:00:00Z", "email", "t")]


def test_no_bad_timezone_record_when_no_local_time_is_computed() -> None:
    j = journey(REMINDER.replace("WAIT", "{at: entry.properties.appointment_at}").replace("appointment_booked",
                                                                                         "identify"))  # fmt: skip
    quiet = policy('consent_required: []\nquiet_hours: {start: "21:00", end: "08:00", channels: [sms]}')
    result = run(j, [ev("identify", "2026-03-01T12:00:00Z", timezone="Europe/Rom",
                        appointment_at="2026-03-02T12:00:00Z")], quiet)  # fmt: skip
    assert len(result.actions) == 1 and kinds(result, "bad_timezone") == []  # email: quiet hours are for sms
