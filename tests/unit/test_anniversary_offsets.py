"""`wait_until: {anniversary: PATH, time, offset}` with a positive offset: "two days after the birthday"."""

from __future__ import annotations

from tests.helpers import ev, journey, policy, run, sends

AFTER = """
id: after-birthday
trigger: {event: identify}
steps:
  - wait_until: {anniversary: profile.traits.birthday, time: "10:00", offset: 2d}
  - send: {channel: email, template: t}
"""
ROME = policy("consent_required: []\ndefault_timezone: Europe/Rome")


def test_a_positive_offset_from_a_coming_birthday() -> None:
    result = run(journey(AFTER), [ev("identify", "2026-03-02T10:00:00Z", birthday="1990-03-05")], ROME)
    assert sends(result) == [("2026-03-07T09:00:00Z", "email", "t")]  # 5 March 10:00 Rome, plus 2 days


def test_the_offset_counts_from_the_next_recurrence_after_the_wait_began() -> None:
    """As the contract says: the recurrence strictly after the wait began (a birthday yesterday: next year's), then
    the offset. "Two days after" a birthday gone yesterday is therefore next year's."""
    result = run(journey(AFTER), [ev("identify", "2026-03-02T10:00:00Z", birthday="1990-03-01")], ROME)
    assert sends(result) == [("2027-03-03T09:00:00Z", "email", "t")]


def test_an_offset_is_an_exact_duration_across_a_clock_change() -> None:
    """`-7d` is 7 x 24 hours, like every duration: across the change to summer time 10:00 local comes out at 09:00."""
    before = AFTER.replace("offset: 2d", "offset: -7d")
    result = run(journey(before), [ev("identify", "2026-03-02T10:00:00Z", birthday="1990-04-02")], ROME)
    assert sends(result) == [("2026-03-26T08:00:00Z", "email", "t")]  # 2 April 10:00 CEST = 08:00Z, minus 7 x 24 h
