"""Each step type and ordering rule of the journey language, through the pure engine."""

from orchestrator.engine import CustomerState, Engine
from tests.helpers import OPEN_POLICY, ev, journey, kinds, run, sends

CART = """
id: cart
trigger: {event: cart_add}
exit_on: [purchase]
steps:
"""


def test_wait_then_send_at_began_plus_duration() -> None:
    result = run(journey(CART + "  - wait: 1h30m\n  - send: {channel: email, template: r}\n"),
                 [ev("cart_add", "2026-03-02T10:00:00Z", sku="A", price=10)])  # fmt: skip
    assert sends(result) == [("2026-03-02T11:30:00Z", "email", "r")]
    assert [r["reason"] for r in kinds(result, "exited")] == ["completed"]


def test_exit_on_cancels_pending_timers() -> None:
    j = journey(CART + "  - wait: 30m\n  - send: {channel: email, template: r}\n")
    result = run(j, [ev("cart_add", "2026-03-02T10:00:00Z", sku="A", price=10),
                     ev("purchase", "2026-03-02T10:29:59Z", order_id="o", value=10)])  # fmt: skip
    assert sends(result) == []
    assert [r["reason"] for r in kinds(result, "exited")] == ["exit_on:purchase"]


def test_timer_due_at_the_event_time_fires_before_the_event() -> None:
    j = journey(CART + "  - wait: 30m\n  - send: {channel: email, template: r}\n")
    result = run(j, [ev("cart_add", "2026-03-02T10:00:00Z", sku="A", price=10),
                     ev("purchase", "2026-03-02T10:30:00Z", order_id="o", value=10)])  # fmt: skip
    assert sends(result) == [("2026-03-02T10:30:00Z", "email", "r")]


WAIT_FOR = (
    CART
    + """\
  - wait_for: {event: store_visit, timeout: 3d, where: {event.properties.store_id: {ne: closed}}}
    on_event: [{send: {channel: instore, template: coupon, data: {store: "{{ event.properties.store_id }}"}}}]
    on_timeout: [{send: {channel: push, template: last-call}}]
  - send: {channel: email, template: after, data: {sku: "{{ entry.properties.sku }}"}}
"""
)


def test_wait_for_event_runs_on_event_then_the_next_step() -> None:
    result = run(journey(WAIT_FOR), [
        ev("cart_add", "2026-03-02T10:00:00Z", sku="A", price=10),
        ev("store_visit", "2026-03-03T10:00:00Z", store_id="closed"),  # where does not hold
        ev("store_visit", "2026-03-04T10:00:00Z", store_id="milano"),
    ])  # fmt: skip
    assert sends(result) == [("2026-03-04T10:00:00Z", "instore", "coupon"), ("2026-03-04T10:00:00Z", "email", "after")]
    assert result.actions[0]["data"] == {"store": "milano"} and result.actions[1]["data"] == {"sku": "A"}
    assert result.actions[0]["event_id"] == result.actions[1]["event_id"]  # the store visit led to both


def test_wait_for_timeout_runs_on_timeout() -> None:
    result = run(journey(WAIT_FOR), [
        ev("store_visit", "2026-03-02T09:00:00Z", store_id="milano"),  # before the wait began: does not count
        ev("cart_add", "2026-03-02T10:00:00Z", sku="A", price=10),
    ])  # fmt: skip
    assert sends(result) == [("2026-03-05T10:00:00Z", "push", "last-call"), ("2026-03-05T10:00:00Z", "email", "after")]
    assert result.actions[1]["event_id"] == result.actions[0]["event_id"]  # the cart_add, via the timer


def test_if_then_else_and_exit() -> None:
    j = journey(
        CART
        + """\
  - if: {profile.cart_value: {gte: 50}}
    then: [{send: {channel: email, template: big}}]
    else: [exit]
  - send: {channel: email, template: next}
"""
    )
    big = run(j, [ev("cart_add", "2026-03-02T10:00:00Z", sku="A", price=60)])
    small = run(j, [ev("cart_add", "2026-03-02T10:00:00Z", sku="A", price=6)])
    assert [t for _, _, t in sends(big)] == ["big", "next"]
    assert sends(small) == [] and [r["reason"] for r in kinds(small, "exited")] == ["exit"]


def test_split_is_stable_per_customer_and_follows_weights() -> None:
    j = journey(
        CART
        + """\
  - split:
      - {weight: 80, steps: [{send: {channel: email, template: a}}]}
      - {weight: 20, steps: [{send: {channel: sms, template: b}}]}
"""
    )
    events = [ev("cart_add", "2026-03-02T10:00:00Z", customer=f"c-{i}", sku="A", price=1) for i in range(2000)]
    first, second = run(j, events), run(j, events)
    assert first.actions == second.actions
    share_a = sum(a["template"] == "a" for a in first.actions) / 2000
    assert 0.76 < share_a < 0.84


def test_wait_until_uses_the_customers_time_zone_and_days() -> None:
    j = journey(CART + '  - wait_until: {time: "10:00", days: [mon]}\n  - send: {channel: email, template: r}\n')
    # 2026-03-02 is a Monday; 10:00 in Rome is 09:00Z, already past at 09:30Z -> next Monday.
    rome = run(j, [ev("identify", "2026-03-02T09:00:00Z", timezone="Europe/Rome"),
                   ev("cart_add", "2026-03-02T09:30:00Z", sku="A", price=1)])  # fmt: skip
    utc = run(j, [ev("cart_add", "2026-03-02T09:30:00Z", sku="A", price=1)])
    assert sends(rome) == [("2026-03-09T09:00:00Z", "email", "r")]
    assert sends(utc) == [("2026-03-02T10:00:00Z", "email", "r")]
    exactly = run(j, [ev("cart_add", "2026-03-02T10:00:00Z", sku="A", price=1)])  # strictly after: a week on
    assert sends(exactly) == [("2026-03-09T10:00:00Z", "email", "r")]


def test_one_run_at_a_time_and_reentry_rules() -> None:
    body = "  - wait: 1h\n  - send: {channel: email, template: r}\n"
    carts = [
        ev("cart_add", at, sku="A", price=1)
        for at in ("2026-03-02T10:00:00Z", "2026-03-02T10:30:00Z", "2026-03-02T12:00:00Z", "2026-03-03T12:00:00Z")
    ]
    never = run(journey(CART + body), carts)
    always = run(journey(CART.replace("steps:", "reentry: always\nsteps:") + body), carts)
    cool = run(journey(CART.replace("steps:", "reentry: 1d\nsteps:") + body), carts)
    assert [s[0] for s in sends(never)] == ["2026-03-02T11:00:00Z"]
    assert [s[0] for s in sends(always)] == ["2026-03-02T11:00:00Z", "2026-03-02T13:00:00Z", "2026-03-03T13:00:00Z"]
    assert [s[0] for s in sends(cool)] == ["2026-03-02T11:00:00Z", "2026-03-03T13:00:00Z"]  # left at 11:00
    assert [r["run"] for r in kinds(always, "entered")] == [1, 2, 3]


def test_exit_on_is_checked_before_wait_for_and_the_trigger() -> None:
    j = journey("""
id: loop
trigger: {event: purchase}
reentry: always
exit_on: [purchase]
steps:
  - wait_for: {event: purchase, timeout: 1d}
    on_event: [{send: {channel: email, template: matched}}]
    on_timeout: [{send: {channel: email, template: timeout}}]
""")
    result = run(j, [ev("purchase", "2026-03-02T10:00:00Z", order_id="1", value=1),
                     ev("purchase", "2026-03-02T11:00:00Z", order_id="2", value=1)])  # fmt: skip
    assert [r["reason"] for r in kinds(result, "exited")] == ["exit_on:purchase", "completed"]
    assert sends(result) == [("2026-03-03T11:00:00Z", "email", "timeout")]  # the second run's timeout


def test_journeys_see_the_profile_after_the_built_in_effects() -> None:
    j = journey("""
id: big-cart
trigger: {event: cart_add, where: {profile.cart_value: {gte: 100}}}
steps: [{send: {channel: email, template: big, data: {n: "{{ profile.events.cart_add }}"}}}]
""")
    result = run(j, [ev("cart_add", "2026-03-02T10:00:00Z", sku="A", price=60),
                     ev("cart_add", "2026-03-02T10:01:00Z", sku="A", price=60)])  # fmt: skip
    assert [(a["at"], a["data"]) for a in result.actions] == [("2026-03-02T10:01:00Z", {"n": 2})]


def test_duplicate_event_ids_are_ignored() -> None:
    j = journey(CART.replace("steps:", "reentry: always\nsteps:") + "  - send: {channel: email, template: r}\n")
    first = ev("cart_add", "2026-03-02T10:00:00Z", sku="A", price=1, event_id="same")
    again = ev("cart_add", "2026-03-02T10:05:00Z", sku="A", price=1, event_id="same")
    result = run(j, [first, again])
    assert len(result.actions) == 1 and result.duplicates == 1
    assert result.states["c-1"].profile["cart"][0]["quantity"] == 1


def test_customers_in_flight_finish_on_their_version() -> None:
    v1 = journey(CART + "  - wait: 1h\n  - send: {channel: email, template: v1}\n")
    v2 = journey(CART.replace("id: cart", "id: cart\nversion: 2") + "  - send: {channel: email, template: v2}\n")
    old = Engine([v1], OPEN_POLICY)
    state = CustomerState("c-1")
    timers = old.on_event(state, ev("cart_add", "2026-03-02T10:00:00Z", sku="A", price=1), 0).timers
    new = Engine([v1, v2], OPEN_POLICY)  # a worker reloads journeys with the new version beside the old
    fired = new.on_timer(state, timers[0], timers[0].due)
    assert [(a["template"], a["journey_version"]) for a in fired.actions] == [("v1", 1)]
    other = CustomerState("c-2")
    fresh = new.on_event(other, ev("cart_add", "2026-03-02T10:00:00Z", customer="c-2", sku="A", price=1), 0)
    assert [(a["template"], a["journey_version"]) for a in fresh.actions] == [("v2", 2)]


def test_until_stops_the_virtual_clock() -> None:
    j = journey(CART + "  - wait: 1d\n  - send: {channel: email, template: r}\n")
    events = [ev("cart_add", "2026-03-02T10:00:00Z", sku="A", price=1),
              ev("cart_add", "2026-03-05T10:00:00Z", customer="c-2", sku="A", price=1)]  # fmt: skip
    result = run(j, events, until="2026-03-03T09:59:59Z")
    assert result.actions == [] and result.after_until == 1
    assert sends(run(j, events, until="2026-03-03T10:00:00Z")) == [("2026-03-03T10:00:00Z", "email", "r")]


def test_goal_conversion_is_recorded_within_the_window_only() -> None:
    j = journey(CART.replace("steps:", "goal: {event: purchase, within: 2d}\nreentry: always\nsteps:")
                + "  - send: {channel: email, template: r}\n")  # fmt: skip
    inside = run(j, [ev("cart_add", "2026-03-02T10:00:00Z", sku="A", price=1),
                     ev("purchase", "2026-03-04T10:00:00Z", order_id="o", value=5)])  # fmt: skip
    late = run(j, [ev("cart_add", "2026-03-02T10:00:00Z", sku="A", price=1),
                   ev("purchase", "2026-03-04T10:00:01Z", order_id="o", value=5)])  # fmt: skip
    assert [(r["journey"], r["run"]) for r in kinds(inside, "converted")] == [("cart", 1)]
    assert kinds(late, "converted") == []


def test_action_ids_are_deterministic_and_coupons_keyed() -> None:
    j = journey(CART + "  - send: {channel: instore, template: c, coupon: {discount_percent: 10, valid_for: 2d}}\n")
    events = [ev("cart_add", "2026-03-02T10:00:00Z", sku="A", price=1)]
    a, b = run(j, events).actions[0], run(j, events).actions[0]
    assert a == b and len(a["action_id"]) == 32
    assert a["coupon"]["discount_percent"] == 10 and a["coupon"]["expires_at"] == "2026-03-04T10:00:00Z"
    other_secret = Engine([j], OPEN_POLICY, secret=b"another").on_event(CustomerState("c-1"), events[0], events[0].ts)
    assert other_secret.actions[0]["action_id"] == a["action_id"]
    assert other_secret.actions[0]["coupon"]["code"] != a["coupon"]["code"]
    assert list(a) == ["action_id", "at", "channel", "template", "customer_id", "journey", "journey_version",
                       "step", "data", "coupon", "event_id"]  # fmt: skip


def test_higher_priority_journeys_see_events_first() -> None:
    low = journey(
        "id: a-low\npriority: 10\ntrigger: {event: cart_add}\nsteps: [{send: {channel: email, template: low}}]"
    )
    high = journey(
        "id: z-high\npriority: 90\ntrigger: {event: cart_add}\nsteps: [{send: {channel: email, template: high}}]"
    )
    from tests.helpers import policy

    capped = policy("consent_required: []\nmax_per_day: {email: 1}")
    result = run([low, high], [ev("cart_add", "2026-03-02T10:00:00Z", sku="A", price=1)], capped)
    assert [a["template"] for a in result.actions] == ["high"]
    assert [(r["journey"], r["reason"]) for r in kinds(result, "suppressed")] == [("a-low", "frequency_cap")]
