"""One customer across channels in `simulate`: resolution, anonymous->known merges, conflicts."""

from typing import Any

from orchestrator.contract.events import event_from_document
from orchestrator.engine import Engine
from orchestrator.engine.history import order_of
from orchestrator.simulate import Result, Simulator
from tests.helpers import OPEN_POLICY, journey, kinds

WEB_TO_STORE = journey("""
id: web-to-store
trigger: {event: cart_add, where: {event.channel: {in: [web, app]}}}
exit_on: [purchase]
steps:
  - wait_for: {event: store_visit, timeout: 3d}
    on_event:
      - send: {channel: instore, template: coupon, data: {items: "{{ profile.cart }}"},
               coupon: {discount_percent: 10, valid_for: 2d}}
""")


def doc(event_id: str, type_: str, at: str, channel: str = "web", **fields: Any) -> dict[str, Any]:
    properties = fields.pop("properties", {})
    return {"event_id": event_id, "type": type_, "occurred_at": at, "channel": channel, "properties": properties,
            **fields}  # fmt: skip


def simulate(*docs: dict[str, Any]) -> Result:
    simulator = Simulator(Engine([WEB_TO_STORE], OPEN_POLICY))
    return simulator.run(sorted((event_from_document(d) for d in docs), key=order_of))


def test_anonymous_cart_then_login_then_loyalty_card_at_the_till_is_one_customer() -> None:
    result = simulate(
        doc("1", "cart_add", "2026-03-02T10:00:00Z", anonymous_id="ck-9", properties={"sku": "S", "price": 40}),
        doc("2", "login", "2026-03-02T10:05:00Z", "app", customer_id="c-42", anonymous_id="ck-9",
            identities={"loyalty_card": "L-77", "email": "Anna@Example.com"}),
        doc("3", "store_visit", "2026-03-03T09:00:00Z", "store", identities={"loyalty_card": "L-77"},
            properties={"store_id": "milano"}),
    )  # fmt: skip
    assert [(a["customer_id"], a["template"]) for a in result.actions] == [("c-42", "coupon")]
    assert result.actions[0]["data"]["items"] == [{"sku": "S", "price": 40.0, "quantity": 1}]
    assert set(result.states) == {"c-42"}  # the anonymous key was emptied
    profile = result.states["c-42"].profile
    assert profile["channels"] == ["web", "app", "store"] and profile["events"]["cart_add"] == 1
    merged = kinds(result, "merged")
    # the merge itself (every merge has one), then each run that moved
    assert [(r["from"], r["into"], r.get("run")) for r in merged] == [
        ("anon:ck-9", "c-42", None), ("anon:ck-9", "c-42", 1)]  # fmt: skip


ITEM = {"sku": "A", "price": 5}


def test_every_merge_is_audited_even_with_no_run_in_flight() -> None:
    result = simulate(
        doc("1", "page_view", "2026-03-02T10:00:00Z", anonymous_id="ck-3"),
        doc("2", "login", "2026-03-02T10:05:00Z", "app", customer_id="c-3", anonymous_id="ck-3"),
    )
    merged = [(r["customer"], r["from"], r["into"], r["at"]) for r in kinds(result, "merged")]
    assert merged == [("c-3", "anon:ck-3", "c-3", "2026-03-02T10:05:00Z")]


def test_two_devices_of_one_customer_merge_and_carts_fold() -> None:
    result = simulate(
        doc("1", "cart_add", "2026-03-02T10:00:00Z", "app", anonymous_id="dev-phone", properties=ITEM),
        doc("2", "cart_add", "2026-03-02T11:00:00Z", anonymous_id="ck-laptop", properties=ITEM),
        doc("3", "login", "2026-03-02T12:00:00Z", "app", customer_id="c-7", anonymous_id="dev-phone"),
        doc("4", "login", "2026-03-02T13:00:00Z", customer_id="c-7", anonymous_id="ck-laptop"),
        doc("5", "page_view", "2026-03-02T14:00:00Z", anonymous_id="ck-laptop"),  # resolves to the known customer
    )  # fmt: skip
    assert set(result.states) == {"c-7"}
    state = result.states["c-7"]
    assert state.profile["cart"] == [{"sku": "A", "price": 5.0, "quantity": 2}] and state.profile["cart_value"] == 10
    assert state.profile["events"] == {"cart_add": 2, "login": 2, "page_view": 1}
    # The first device's run moved over; the second device's run ended: c-7 was already in the journey.
    exits = [(r["reason"], r["customer"], r["at"]) for r in kinds(result, "exited")]
    assert exits == [("merged", "c-7", "2026-03-02T13:00:00Z"), ("completed", "c-7", "2026-03-05T10:00:00Z")]
    # Two runs on record: the phone's (moved, timed out 3 days after its cart) and the laptop's (ended, merged).
    assert state.history["web-to-store"].runs == 2


def test_two_known_customers_are_not_merged_the_identifier_moves() -> None:
    result = simulate(
        doc("1", "identify", "2026-03-02T10:00:00Z", customer_id="c-1", identities={"email": "shared@example.com"}),
        doc("2", "identify", "2026-03-02T11:00:00Z", customer_id="c-2", identities={"email": "shared@example.com"}),
        doc("3", "page_view", "2026-03-02T12:00:00Z", identities={"email": " SHARED@example.com"}),
    )  # fmt: skip
    assert set(result.states) == {"c-1", "c-2"}
    conflicts = kinds(result, "identity_conflict")
    assert [(c["customer"], c["from"], c["identifier_kind"]) for c in conflicts] == [("c-2", "c-1", "email")]
    assert result.states["c-2"].profile["events"] == {"identify": 1, "page_view": 1}


def test_raw_identities_never_reach_state_or_actions() -> None:
    result = simulate(
        doc("1", "cart_add", "2026-03-02T10:00:00Z", customer_id="c-1", identities={"phone": "+39 333 1234567"},
            properties={"sku": "S", "price": 40}),
        doc("2", "store_visit", "2026-03-02T11:00:00Z", "store", identities={"phone": "0039 333 1234567"},
            properties={"store_id": "x"}),
    )  # fmt: skip
    assert [a["customer_id"] for a in result.actions] == ["c-1"]
    dumped = str(result.states["c-1"].to_dict()) + str(result.actions) + str(result.audit)
    assert "1234567" not in dumped


def coupon_journey_log(*extra: dict[str, Any]) -> Result:
    return simulate(
        doc("1", "cart_add", "2026-03-02T10:00:00Z", customer_id="c-1", properties={"sku": "S", "price": 40}),
        doc("2", "store_visit", "2026-03-02T12:00:00Z", "store", customer_id="c-1", properties={"store_id": "x"}),
        *extra,
    )


def test_a_coupon_is_redeemed_once_before_it_expires_and_converts_its_journey() -> None:
    code = coupon_journey_log().actions[0]["coupon"]["code"]
    redeem = {"code": code, "store_id": "x", "order_id": "o-1"}
    result = coupon_journey_log(
        doc("3", "coupon_redeemed", "2026-03-03T09:00:00Z", "store", customer_id="c-1", properties=redeem),
        doc("4", "coupon_redeemed", "2026-03-03T09:05:00Z", "store", customer_id="c-1", properties=redeem),
        doc("5", "coupon_redeemed", "2026-03-03T09:06:00Z", "store", customer_id="c-1",
            properties={**redeem, "code": "AAAA-BBBB-CCCC-DDDD"}),
    )  # fmt: skip
    assert [r["code"] for r in kinds(result, "coupon_redeemed")] == [code]
    assert [(r["reason"]) for r in kinds(result, "coupon_rejected")] == ["already_redeemed", "unknown"]
    assert [(r["journey"], r.get("via")) for r in kinds(result, "converted")] == [("web-to-store", "coupon")]
    offer = result.states["c-1"].profile["offers"][code]
    assert offer["status"] == "redeemed" and offer["order_id"] == "o-1"
    late = coupon_journey_log(
        doc("3", "coupon_redeemed", "2026-03-04T12:00:00Z", "store", customer_id="c-1", properties=redeem)
    )  # valid for 2 days from 12:00 on the 2nd: expired at 12:00 on the 4th
    assert [r["reason"] for r in kinds(late, "coupon_rejected")] == ["expired"]


def test_forget_erases_the_customer_and_later_events_start_fresh() -> None:
    result = simulate(
        doc("1", "cart_add", "2026-03-02T10:00:00Z", customer_id="c-1", identities={"email": "a@example.com"},
            properties={"sku": "S", "price": 40}),
        doc("2", "forget", "2026-03-02T11:00:00Z", "call_center", customer_id="c-1"),
        doc("3", "page_view", "2026-03-02T12:00:00Z", identities={"email": "a@example.com"}),
    )  # fmt: skip
    assert result.actions == []  # the waiting run (and its timer) went with the customer
    assert [r["kind"] for r in result.audit if r["customer"] == "c-1"][-1] == "erased"
    assert "c-1" not in result.states  # the email no longer leads to c-1: a fresh anonymous customer
    assert len(result.states) == 1 and next(iter(result.states)).startswith("anon:email:")


def test_a_coupon_issued_before_login_is_redeemed_by_the_known_customer() -> None:
    anonymous = [
        doc("1", "cart_add", "2026-03-02T10:00:00Z", anonymous_id="ck-1", properties={"sku": "S", "price": 40}),
        doc("2", "store_visit", "2026-03-02T11:00:00Z", "store", anonymous_id="ck-1", properties={"store_id": "x"}),
    ]
    code = simulate(*anonymous).actions[0]["coupon"]["code"]
    result = simulate(
        doc("0", "purchase", "2026-03-01T10:00:00Z", customer_id="c-9", properties={"order_id": "o", "value": 1}),
        *anonymous,
        doc("3", "login", "2026-03-02T12:00:00Z", customer_id="c-9", anonymous_id="ck-1"),
        doc("4", "coupon_redeemed", "2026-03-02T13:00:00Z", "store", customer_id="c-9", properties={"code": code}),
    )  # fmt: skip
    assert [r["code"] for r in kinds(result, "coupon_redeemed")] == [code]
    assert result.states["c-9"].profile["offers"][code]["status"] == "redeemed"


def test_an_anonymous_run_ended_by_a_merge_keeps_its_number_and_says_whose_it_was() -> None:
    """The known customer is in the journey already, so the anonymous run ends (`merged`): its record carries the
    number it had (2: its second run) and `from`, and no run of either customer exits twice."""
    again = WEB_TO_STORE.model_copy(update={"reentry": "always"})
    cart = {"sku": "S", "price": 40}
    docs = [
        doc("1", "cart_add", "2026-03-02T09:00:00Z", customer_id="c-5", properties=cart),
        doc("2", "cart_add", "2026-03-02T10:00:00Z", anonymous_id="ck-1", properties=cart),
        doc("3", "purchase", "2026-03-02T10:30:00Z", anonymous_id="ck-1", properties={"order_id": "o", "value": 1}),
        doc("4", "cart_add", "2026-03-02T11:00:00Z", anonymous_id="ck-1", properties=cart),
        doc("5", "login", "2026-03-02T12:00:00Z", customer_id="c-5", anonymous_id="ck-1"),
    ]
    result = Simulator(Engine([again], OPEN_POLICY)).run([event_from_document(d) for d in docs])
    entered = [(r["customer"], r["run"]) for r in kinds(result, "entered")]
    assert entered == [("c-5", 1), ("anon:ck-1", 1), ("anon:ck-1", 2)]
    exits = [(r["customer"], r.get("from"), r["run"], r["reason"]) for r in kinds(result, "exited")]
    assert exits == [
        ("anon:ck-1", None, 1, "exit_on:purchase"),
        ("c-5", "anon:ck-1", 2, "merged"),  # in the known customer's timeline, as the anonymous run it was
        ("c-5", None, 1, "completed"),
    ]
    owners = [(r.get("from", r["customer"]), r["journey"], r["run"]) for r in kinds(result, "exited")]
    assert len(owners) == len(set(owners)) and set(owners) == {(c, "web-to-store", n) for c, n in entered}
    merged = [(r["from"], r["into"], r.get("run")) for r in kinds(result, "merged")]
    assert merged == [("anon:ck-1", "c-5", None), ("anon:ck-1", "c-5", 2)]


def test_a_merge_keeps_counts_over_time_the_later_inactivity_timer_and_the_programme() -> None:
    from orchestrator.engine.state import CustomerState
    from tests.helpers import ev

    win_back = journey("id: win-back\ntrigger: {inactive_for: 1d}\nsteps: [{send: {channel: email, template: t}}]")
    engine = Engine([win_back], OPEN_POLICY)
    known, anonymous = CustomerState("c-1"), CustomerState("anon:x")
    engine.on_event(known, ev("product_view", "2026-03-01T10:00:00Z"), 0)
    engine.on_event(anonymous, ev("product_view", "2026-03-02T10:00:00Z", customer="anon:x"), 0)
    known.profile["programme"] = {"control": False, "conversions": 1, "revenue": 10.5}
    anonymous.profile["programme"] = {"control": False, "conversions": 2, "revenue": 1.25}
    engine.absorb(known, anonymous, 0)
    assert len(known.profile["recent"]["product_view"]) == 2
    # One timer, still the known customer's (it fires first), now entering from the anonymous one's later event.
    (timer,) = known.pending_timers()
    assert timer.journey == "win-back" and known.armed["win-back"].enters == anonymous.armed["win-back"].enters
    assert known.profile["programme"] == {"control": False, "conversions": 3, "revenue": 11.75}


def test_after_a_merge_the_programme_group_is_the_known_keys() -> None:
    from orchestrator.contract.journeys import Policy
    from orchestrator.engine.ids import unit_interval
    from orchestrator.engine.state import CustomerState

    control = next(f"c-{i}" for i in range(1000) if unit_interval("global_holdout", f"c-{i}") * 100 < 50)
    treated = next(f"anon:{i}" for i in range(1000) if unit_interval("global_holdout", f"anon:{i}") * 100 >= 50)
    engine = Engine([], Policy(consent_required=(), global_holdout=50))
    known, anonymous = CustomerState(control), CustomerState(treated)
    anonymous.profile["programme"] = {"control": False, "conversions": 0, "revenue": 0}
    engine.absorb(known, anonymous, 0)
    assert known.profile["programme"]["control"] is True
