"""`explain`'s lines (`describe`) for the records of a `decide` step and the sends of the offers it picked."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.explain import describe, timelines

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
        "web-to-store v2 > store-offer: email cart-coupon for offer cart-10 not sent: no_consent"
    )
    deferred = record("deferred", channel="sms", template="gift", offer="free-gift", explore=True,
                      until="2026-03-03T08:00:00Z", reason="quiet_hours")  # fmt: skip
    assert describe(deferred) == ("web-to-store v2 > store-offer: sms gift for offer free-gift (explored) held until "
                                  "2026-03-03T08:00:00Z (quiet_hours)")  # fmt: skip


def test_sends_without_an_offer_read_as_before() -> None:
    sent = record("sent", channel="email", template="cart-reminder", action_id="a1")
    assert describe(sent) == "web-to-store v2 > store-offer: email cart-reminder (a1)"
    suppressed = record("suppressed", channel="email", template="cart-reminder", reason="holdout")
    assert describe(suppressed) == "web-to-store v2 > store-offer: email cart-reminder not sent: holdout"


def test_a_decision_in_the_timeline() -> None:
    lines = list(timelines([decided([{"offer": "cart-10", "score": 2}], ["cart-10"])]))
    assert lines == [
        "customer c-1",
        "  2026-03-02T10:00:00Z  decided     web-to-store v2 > store-offer: picked cart-10 (score 2)",
    ]
