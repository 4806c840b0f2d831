"""Contact policy: holdout -> consent (with fallbacks) -> quiet hours -> daily cap."""

from orchestrator.contract.journeys import Policy
from tests.helpers import ev, journey, kinds, policy, run, sends

SEND = """
id: nudge
trigger: {event: cart_add}
reentry: always
holdout: HOLDOUT
steps:
  - send: {channel: email, template: t, fallback: [sms, push]}
"""
CONSENT = policy("consent_required: [email, sms, push]")


def consent(channel: str, granted: bool, at: str = "2026-03-02T09:00:00Z", customer: str = "c-1"):  # type: ignore[no-untyped-def]
    return ev("consent_update", at, customer=customer, channel=channel, granted=granted)


def cart(at: str = "2026-03-02T10:00:00Z", customer: str = "c-1"):  # type: ignore[no-untyped-def]
    return ev("cart_add", at, customer=customer, sku="A", price=1)


def test_consent_falls_back_in_order_then_suppresses() -> None:
    j = journey(SEND.replace("HOLDOUT", "0%"))
    assert sends(run(j, [consent("email", True), cart()], CONSENT))[0][1] == "email"
    assert sends(run(j, [consent("push", True), consent("sms", True), cart()], CONSENT))[0][1] == "sms"
    assert sends(run(j, [consent("push", True), cart()], CONSENT))[0][1] == "push"
    none = run(j, [consent("email", False), cart()], CONSENT)
    assert none.actions == [] and [r["reason"] for r in kinds(none, "suppressed")] == ["no_consent"]


def test_channels_outside_consent_required_need_no_consent() -> None:
    j = journey(SEND.replace("HOLDOUT", "0%").replace("channel: email", "channel: instore"))
    assert sends(run(j, [cart()], CONSENT))[0][1] == "instore"


def test_consent_withdrawn_while_waiting_stops_the_send() -> None:
    j = journey(SEND.replace("HOLDOUT", "0%").replace("  - send", "  - wait: 1h\n  - send"))
    result = run(j, [consent("email", True), cart(), consent("email", False, "2026-03-02T10:30:00Z")], CONSENT)
    assert result.actions == [] and [r["reason"] for r in kinds(result, "suppressed")] == ["no_consent"]


def test_holdout_is_checked_first_and_is_a_stable_share() -> None:
    j = journey(SEND.replace("HOLDOUT", "30%"))
    events = [cart(customer=f"c-{i}") for i in range(3000)]
    result = run(j, events, Policy(consent_required=()))
    held = {r["customer"] for r in kinds(result, "entered") if r["holdout"]}
    assert 0.27 < len(held) / 3000 < 0.33
    assert {a["customer_id"] for a in result.actions}.isdisjoint(held)
    assert {r["customer"] for r in kinds(result, "suppressed") if r["reason"] == "holdout"} == held
    assert held == {r["customer"] for r in kinds(run(j, events, Policy(consent_required=())), "entered")
                    if r["holdout"]}  # fmt: skip


QUIET = policy("""
consent_required: []
default_timezone: Europe/Rome
quiet_hours: {start: "21:00", end: "08:00", channels: [sms, push]}
""")


def test_quiet_hours_defer_to_the_end_of_the_window_in_local_time() -> None:
    sms_only = SEND.replace("HOLDOUT", "0%").replace("email, template: t, fallback: [sms, push]", "sms, template: t")
    j = journey(sms_only + "  - send: {channel: email, template: after}\n")
    # 22:30 in Rome (21:30Z): held until 08:00 Rome (07:00Z); the run waits with it.
    late = run(j, [cart("2026-03-02T21:30:00Z")], QUIET)
    assert sends(late) == [("2026-03-03T07:00:00Z", "sms", "t"), ("2026-03-03T07:00:00Z", "email", "after")]
    assert [r["until"] for r in kinds(late, "deferred")] == ["2026-03-03T07:00:00Z"]
    # A customer in New York: 21:30Z is 16:30 local, outside the window.
    ny = run(j, [ev("identify", "2026-03-02T20:00:00Z", timezone="America/New_York"), cart("2026-03-02T21:30:00Z")],
             QUIET)  # fmt: skip
    assert sends(ny)[0] == ("2026-03-02T21:30:00Z", "sms", "t")
    # Email is not a quiet channel.
    email = journey(SEND.replace("HOLDOUT", "0%"))
    assert sends(run(email, [cart("2026-03-02T21:30:00Z")], QUIET))[0][0] == "2026-03-02T21:30:00Z"


def test_daily_cap_is_rolling_per_channel_and_counts_only_emitted_actions() -> None:
    capped = policy("consent_required: [email]\nmax_per_day: {email: 2}")
    j = journey(SEND.replace("HOLDOUT", "0%").replace(", fallback: [sms, push]", ""))
    times = [
        "2026-03-02T10:00:00Z",
        "2026-03-02T11:00:00Z",
        "2026-03-02T12:00:00Z",
        "2026-03-03T10:00:00Z",
        "2026-03-03T10:00:01Z",
    ]
    # The first cart comes before consent: suppressed (no_consent), and it does not count toward the cap.
    events = [cart(times[0]), consent("email", True, "2026-03-02T10:30:00Z")] + [cart(t) for t in times[1:]]
    result = run(j, events, capped)
    assert [a["at"] for a in result.actions] == ["2026-03-02T11:00:00Z", "2026-03-02T12:00:00Z"]
    reasons = [(r["at"], r["reason"]) for r in kinds(result, "suppressed")]
    # At 10:00 on the 3rd, the 24 h window still holds the 11:00 and 12:00 sends of the 2nd: capped.
    assert reasons == [
        ("2026-03-02T10:00:00Z", "no_consent"),
        ("2026-03-03T10:00:00Z", "frequency_cap"),
        ("2026-03-03T10:00:01Z", "frequency_cap"),
    ]
    later = run(j, [*events, cart("2026-03-03T11:00:00Z")], capped)  # the 11:00 send has left the window
    assert [a["at"] for a in later.actions][-1] == "2026-03-03T11:00:00Z"
