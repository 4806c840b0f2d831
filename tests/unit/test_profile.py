"""Built-in profile effects, applied before journeys see an event."""

from orchestrator.engine import CustomerState, Engine
from tests.helpers import OPEN_POLICY, ev


def fold(*events):  # type: ignore[no-untyped-def]
    engine, state = Engine([], OPEN_POLICY), CustomerState("c-1")
    for event in events:
        engine.on_event(state, event, event.ts)
    return state.profile


def test_every_event_updates_channels_last_seen_and_counts() -> None:
    profile = fold(ev("page_view", "2026-03-02T10:00:00Z", via="social"),
                   ev("page_view", "2026-03-02T11:00:00+01:00", via="web"),
                   ev("store_visit", "2026-03-02T12:00:00Z", via="store", store_id="milano"))  # fmt: skip
    assert profile["channels"] == ["social", "web", "store"]
    assert profile["last_channel"] == "store" and profile["last_seen_at"] == "2026-03-02T12:00:00Z"
    assert profile["events"] == {"page_view": 2, "store_visit": 1}
    assert profile["last_store_id"] == "milano"


def test_cart_add_remove_and_value() -> None:
    profile = fold(ev("cart_add", "2026-03-02T10:00:00Z", sku="A", price=19.99, quantity=2, name="Tee"),
                   ev("cart_add", "2026-03-02T10:01:00Z", sku="A", price=19.99),
                   ev("cart_add", "2026-03-02T10:02:00Z", sku="B", price=5),
                   ev("cart_remove", "2026-03-02T10:03:00Z", sku="B"))  # fmt: skip
    assert profile["cart"] == [{"sku": "A", "price": 19.99, "quantity": 3, "name": "Tee"}]
    assert profile["cart_value"] == 59.97


def test_purchase_clears_the_cart_and_adds_lifetime_value() -> None:
    profile = fold(ev("cart_add", "2026-03-02T10:00:00Z", sku="A", price=10),
                   ev("purchase", "2026-03-02T11:00:00Z", order_id="o1", value=10.1),
                   ev("purchase", "2026-03-03T11:00:00Z", order_id="o2", value=0.2, store_id="roma"))  # fmt: skip
    assert profile["cart"] == [] and profile["cart_value"] == 0
    assert profile["lifetime_value"] == 10.3 and profile["orders"] == 2
    assert profile["last_purchase_at"] == "2026-03-03T11:00:00Z"


def test_traits_and_consent() -> None:
    profile = fold(ev("identify", "2026-03-02T10:00:00Z", first_name="Anna", tier="silver"),
                   ev("profile_update", "2026-03-02T11:00:00Z", tier="gold"),
                   ev("consent_update", "2026-03-02T12:00:00Z", channel="email", granted=True),
                   ev("consent_update", "2026-03-02T13:00:00Z", channel="sms", granted=False))  # fmt: skip
    assert profile["traits"] == {"first_name": "Anna", "tier": "gold"}
    assert profile["consent"] == {"email": True, "sms": False}
