"""Per-journey limits (max_sends, send_window, category) and the programme-wide rules (spacing, global_holdout)."""

from __future__ import annotations

from orchestrator.engine.ids import unit_interval
from tests.helpers import ev, journey, kinds, policy, run, sends

EVERY_CART = """
id: nudge
trigger: {event: cart_add}
reentry: always
EXTRA
steps:
  - send: {channel: email, template: t}
"""
OPEN = policy("consent_required: []")


def carts(*ats: str, customer: str = "c-1") -> list:  # type: ignore[type-arg]
    return [ev("cart_add", at, customer=customer, sku=f"S{i}", price=1) for i, at in enumerate(ats)]


def test_max_sends_suppresses_beyond_the_limit_within_the_window() -> None:
    j = journey(EVERY_CART.replace("EXTRA", "max_sends: {max: 2, within: 7d}"))
    result = run(j, carts("2026-03-01T10:00:00Z", "2026-03-02T10:00:00Z", "2026-03-03T10:00:00Z",
                          "2026-03-08T10:00:01Z"), OPEN)  # fmt: skip
    assert [a["at"] for a in result.actions] == ["2026-03-01T10:00:00Z", "2026-03-02T10:00:00Z",
                                                 "2026-03-08T10:00:01Z"]  # fmt: skip
    assert [r["reason"] for r in kinds(result, "suppressed")] == ["journey_cap"]


def test_max_sends_counts_only_its_own_journey() -> None:
    capped = journey(EVERY_CART.replace("EXTRA", "max_sends: {max: 1, within: 7d}"))
    other = journey(EVERY_CART.replace("id: nudge", "id: other").replace("EXTRA", ""))
    result = run([capped, other], carts("2026-03-01T10:00:00Z", "2026-03-02T10:00:00Z"), OPEN)
    assert sorted(a["journey"] for a in result.actions) == ["nudge", "other", "other"]


def test_send_window_defers_to_the_next_opening_in_local_time() -> None:
    window = 'send_window: {start: "09:00", end: "20:00", days: [mon, tue, wed, thu, fri]}'
    j = journey(EVERY_CART.replace("EXTRA", window))
    pol = policy("consent_required: []\ndefault_timezone: Europe/Rome")
    # Saturday 2026-03-07 12:00 Rome: deferred to Monday 09:00 Rome (08:00Z)
    result = run(j, carts("2026-03-07T11:00:00Z"), pol)
    assert sends(result) == [("2026-03-09T08:00:00Z", "email", "t")]
    assert [r["reason"] for r in kinds(result, "deferred")] == ["send_window"]
    # Wednesday 21:30 Rome: Thursday 09:00; inside the window: at once
    assert sends(run(j, carts("2026-03-04T20:30:00Z"), pol))[0][0] == "2026-03-05T08:00:00Z"
    assert sends(run(j, carts("2026-03-04T10:30:00Z"), pol))[0][0] == "2026-03-04T10:30:00Z"


def test_transactional_journeys_skip_marketing_limits_but_not_consent() -> None:
    strict = policy("""
consent_required: [email]
max_per_day: {email: 1}
quiet_hours: {start: "00:00", end: "23:59", channels: [email]}
spacing: {min: 4h, channels: [email]}
global_holdout: 100%
""")
    receipt = journey(EVERY_CART.replace("id: nudge", "id: receipt").replace("EXTRA", "category: transactional"))
    granted = [ev("consent_update", "2026-03-01T09:00:00Z", channel="email", granted=True)]
    result = run(receipt, granted + carts("2026-03-01T10:00:00Z", "2026-03-01T10:01:00Z"), strict)
    assert [a["at"] for a in result.actions] == ["2026-03-01T10:00:00Z", "2026-03-01T10:01:00Z"]
    result = run(receipt, carts("2026-03-01T10:00:00Z"), strict)
    assert result.actions == [] and [r["reason"] for r in kinds(result, "suppressed")] == ["no_consent"]


def test_transactional_sends_do_not_count_for_marketing_caps() -> None:
    pol = policy("consent_required: []\nmax_per_day: {email: 1}")
    receipt = journey(EVERY_CART.replace("id: nudge", "id: receipt").replace("EXTRA", "category: transactional"))
    nudge = journey(EVERY_CART.replace("EXTRA", ""))
    result = run([receipt, nudge], carts("2026-03-01T10:00:00Z"), pol)
    assert sorted(a["journey"] for a in result.actions) == ["nudge", "receipt"]


def test_spacing_suppresses_a_second_marketing_send_within_the_gap_across_journeys() -> None:
    pol = policy("consent_required: []\nspacing: {min: 4h, channels: [email, sms]}")
    a = journey(EVERY_CART.replace("EXTRA", ""))
    def on(jid: str, channel: str):  # type: ignore[no-untyped-def]
        return journey(EVERY_CART.replace("id: nudge", f"id: {jid}").replace("EXTRA", "").replace("email", channel))

    b, push = on("later", "sms"), on("pushy", "push")
    result = run([a, b, push], carts("2026-03-01T10:00:00Z", "2026-03-01T13:59:00Z", "2026-03-01T14:00:00Z"), pol)
    by = [(x["at"][11:16], x["journey"]) for x in result.actions]
    # At the same priority journeys go by id: `later` sends first, `nudge` is spaced out; push is not spaced.
    assert by == [("10:00", "later"), ("10:00", "pushy"), ("13:59", "pushy"), ("14:00", "later"), ("14:00", "pushy")]
    assert all(r["reason"] == "spacing" for r in kinds(result, "suppressed"))


def test_the_global_holdout_is_a_stable_share_that_receives_nothing_from_marketing() -> None:
    pol = policy("consent_required: []\nglobal_holdout: 20%")
    j = journey(EVERY_CART.replace("EXTRA", ""))
    other = journey(EVERY_CART.replace("id: nudge", "id: other").replace("EXTRA", ""))
    events = [e for i in range(1000) for e in carts("2026-03-01T10:00:00Z", customer=f"c-{i}")]
    result = run([j, other], events, pol)
    control = {f"c-{i}" for i in range(1000) if unit_interval("global_holdout", f"c-{i}") * 100 < 20}
    assert 0.16 < len(control) / 1000 < 0.24
    assert {a["customer_id"] for a in result.actions}.isdisjoint(control)
    assert {r["customer"] for r in kinds(result, "entered") if r.get("global_holdout")} == control
    assert {r["customer"] for r in kinds(result, "suppressed") if r["reason"] == "global_holdout"} == control
    assert len(result.actions) == 2 * (1000 - len(control))
