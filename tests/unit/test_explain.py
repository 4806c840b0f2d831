"""`explain`'s lines (`describe`) for the records of a `decide` step and the sends of the offers it picked."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.measurement.explain import describe, timelines

RUN = {"at": "2026-03-02T10:00:00Z", "customer": "c-1", "journey": "web-to-store", "version": 2, "run": 1,
       "step": "store-offer"}  # fmt: skip


def record(kind: str, **fields: Any) -> dict[str, Any]:
    return {**RUN, "kind": kind, **fields}


def decided(candidates: list[dict[str, Any]], picked: list[str], explore: bool = False) -> dict[str, Any]:
    return record("decided", candidates=candidates, picked=picked, explore=explore)


@pytest.mark.parametrize(
    ("candidates", "picked", "explore", "line"),
    [
        (
            [{"offer": "cart-10", "score": 12.5}, {"offer": "free-gift", "out": "not_eligible"},
             {"offer": "double-points", "out": "capped"}],
            ["cart-10"], False,
            "web-to-store v2 > store-offer: picked cart-10 (score 12.5); free-gift out (not eligible), "
            "double-points out (capped)",
        ),
        (
            [{"offer": "cart-10", "score": 12.5}, {"offer": "free-gift", "score": 3.0}],
            ["free-gift"], True,
            "web-to-store v2 > store-offer: picked free-gift (score 3) (explored); also eligible: cart-10 (score 12.5)",
        ),
        (
            [{"offer": "cart-10", "score": 12.5}, {"offer": "free-gift", "score": 3}, {"offer": "gift-b", "score": 1},
             {"offer": "old", "out": "not_valid"}],
            ["cart-10", "free-gift"], False,
            "web-to-store v2 > store-offer: picked cart-10 (score 12.5), free-gift (score 3); also eligible: gift-b "
            "(score 1); old out (not valid)",
        ),
        (
            [{"offer": "cart-10", "out": "no_consent"}, {"offer": "free-gift", "out": "not_eligible"}],
            [], False,
            "web-to-store v2 > store-offer: no offer eligible; cart-10 out (no consent), free-gift out (not eligible)",
        ),
        ([], [], False, "web-to-store v2 > store-offer: no offer eligible"),
    ],
)  # fmt: skip
def test_a_decision_in_words(candidates: list[dict[str, Any]], picked: list[str], explore: bool, line: str) -> None:
    assert describe(decided(candidates, picked, explore)) == line


def test_the_sends_of_an_offer_name_it_and_say_when_it_was_explored() -> None:
    sent = record("sent", channel="email", template="cart-coupon", action_id="a1", offer="cart-10")
    assert describe(sent) == "web-to-store v2 > store-offer: email cart-coupon for offer cart-10 (a1)"
    assert describe({**sent, "explore": True}) == (
        "web-to-store v2 > store-offer: email cart-coupon for offer cart-10 (explored) (a1)"
    )
    suppressed = record("suppressed", channel="email", template="cart-coupon", offer="cart-10", reason="no_consent")
    assert describe(suppressed) == (
        "web-to-store v2 > store-offer: email cart-coupon for offer cart-10 not sent: no_consent (no consent on the "
        "channel or its fallbacks)"
    )
    deferred = record("deferred", channel="sms", template="gift", offer="free-gift", explore=True,
                      until="2026-03-03T08:00:00Z", reason="quiet_hours")  # fmt: skip
    assert describe(deferred) == ("web-to-store v2 > store-offer: sms gift for offer free-gift (explored) held until "
                                  "2026-03-03T08:00:00Z (quiet_hours: the customer's quiet hours)")  # fmt: skip


def test_sends_without_an_offer_read_as_before() -> None:
    sent = record("sent", channel="email", template="cart-reminder", action_id="a1")
    assert describe(sent) == "web-to-store v2 > store-offer: email cart-reminder (a1)"
    suppressed = record("suppressed", channel="email", template="cart-reminder", reason="holdout")
    assert describe(suppressed) == ("web-to-store v2 > store-offer: email cart-reminder not sent: holdout (the "
                                    "journey's holdout, its control group)")  # fmt: skip


def test_a_decision_in_the_timeline() -> None:
    lines = list(timelines([decided([{"offer": "cart-10", "score": 2}], ["cart-10"])]))
    assert lines == [
        "customer c-1",
        "  2026-03-02T10:00:00Z  decided     web-to-store v2 > store-offer: picked cart-10 (score 2)",
    ]


ENTRY = {"at": "2026-03-02T10:00:00Z", "customer": "c-1", "journey": "cart", "version": 3, "event_id": "e-7"}


@pytest.mark.parametrize(
    ("fields", "line"),
    [
        ({"reason": "where", "condition": {"profile.cart_value": {"gte": 30}}},
         "cart v3 not entered: the trigger's where does not hold: profile.cart_value gte 30"),
        ({"reason": "where", "condition": {"any": [{"event.channel": {"in": ["web", "app"]}},
                                                   {"not": {"profile.traits.tier": "gold"}}]}},
         "cart v3 not entered: the trigger's where does not hold: (event.channel in [web, app] or not "
         "profile.traits.tier = gold)"),
        ({"reason": "reentry", "until": "2026-03-09T10:00:00Z"},
         "cart v3 not entered: reentry: not before 2026-03-09T10:00:00Z, the cool-down since the last run"),
        ({"reason": "reentry"}, "cart v3 not entered: reentry: the journey allows this customer no new run"),
        ({"reason": "running", "run": 2}, "cart v3 not entered: already in the journey (run 2)"),
        ({"reason": "max_active_journeys", "active": ["cart", "welcome"]},
         "cart v3 not entered: already in 2 marketing journeys (cart, welcome): the policy's max_active_journeys"),
        ({"reason": "disabled"}, "cart v3 not entered: the journey is disabled"),
        ({"reason": "something_new"}, "cart v3 not entered: something_new"),
    ],
)  # fmt: skip
def test_a_trigger_that_started_no_run_says_why(fields: dict[str, Any], line: str) -> None:
    assert describe({**ENTRY, "kind": "not_entered", **fields}) == line


@pytest.mark.parametrize(
    ("reason", "words"),
    [
        ("holdout", "the journey's holdout, its control group"),
        ("global_holdout", "the programme's global control group"),
        ("no_consent", "no consent on the channel or its fallbacks"),
        ("frequency_cap", "the channel's daily cap is reached"),
        ("journey_cap", "the journey's max_sends is reached"),
        ("spacing", "too soon after the last marketing send"),
        ("no_template", "the template name came out empty"),
    ],
)
def test_every_suppression_reason_reads_in_words(reason: str, words: str) -> None:
    suppressed = record("suppressed", channel="email", template="t", reason=reason)
    assert describe(suppressed) == f"web-to-store v2 > store-offer: email t not sent: {reason} ({words})"


def test_send_windows_missing_dates_and_bad_time_zones_in_words() -> None:
    deferred = record("deferred", channel="email", template="t", until="2026-03-03T09:00:00Z", reason="send_window")
    assert describe(deferred) == ("web-to-store v2 > store-offer: email t held until 2026-03-03T09:00:00Z "
                                  "(send_window: outside the journey's send window)")  # fmt: skip
    ended = {name: value for name, value in RUN.items() if name != "step"}
    no_date = {**ended, "kind": "exited", "reason": "no_date", "step": "birthday"}
    assert describe(no_date) == ("web-to-store v2 run 1 (no_date at birthday: no date to wait for at the "
                                 "wait_until's path)")  # fmt: skip
    assert describe({**ended, "kind": "exited", "reason": "exit_on:purchase"}) == (
        "web-to-store v2 run 1 (exit_on:purchase)")  # fmt: skip
    zone = {"at": "2026-03-02T10:00:00Z", "customer": "c-1", "kind": "bad_timezone", "timezone": "Europe/Rom",
            "used": "UTC"}  # fmt: skip
    assert describe(zone) == "time zone 'Europe/Rom' is not an IANA zone name: UTC used instead"
    lines = list(timelines([{**ENTRY, "kind": "not_entered", "reason": "disabled"}, zone]))
    assert lines[1:] == ["  2026-03-02T10:00:00Z  not_entered  cart v3 not entered: the journey is disabled",
                         "  2026-03-02T10:00:00Z  bad_timezone  time zone 'Europe/Rom' is not an IANA zone name: "
                         "UTC used instead"]  # fmt: skip


def test_a_merge_reads_as_one() -> None:
    from orchestrator.measurement.explain import describe

    record = {"at": "2026-03-02T10:05:00Z", "customer": "c-3", "kind": "merged", "from": "anon:ck-3", "into": "c-3"}
    assert describe(record) == "anonymous visitor anon:ck-3 merged into c-3"
