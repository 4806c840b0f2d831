from typing import Any

import pytest

from orchestrator.contract.conditions import compile_condition
from orchestrator.contract.templates import compile_template

EVENT = {"type": "cart_add", "channel": "web", "properties": {"sku": "S-1", "price": 59.9, "tags": ["new"]}}
ENTRY = {"type": "cart_add", "channel": "app", "properties": {"sku": "S-0"}}
PROFILE: dict[str, Any] = {
    "cart_value": 74.9, "channels": ["web", "store"], "traits": {"first_name": "Anna"},
    "cart": [{"sku": "S-1", "quantity": 2}], "consent": {"email": True},
}  # fmt: skip
SCOPE = (EVENT, ENTRY, PROFILE, 0)


@pytest.mark.parametrize(
    ("cond", "expected"),
    [
        ({"event.channel": "web"}, True),
        ({"event.channel": {"eq": "app"}}, False),
        ({"event.channel": {"ne": "app"}}, True),
        ({"event.channel": {"in": ["web", "app"]}}, True),
        ({"event.channel": {"not_in": ["web", "app"]}}, False),
        ({"profile.cart_value": {"gt": 74.9}}, False),
        ({"profile.cart_value": {"gte": 74.9}}, True),
        ({"profile.cart_value": {"lt": 100, "gt": 10}}, True),
        ({"profile.cart_value": {"lte": 74}}, False),
        ({"profile.missing": {"exists": False}}, True),
        ({"event.properties.sku": {"exists": True}}, True),
        ({"profile.channels": {"contains": "store"}}, True),
        ({"event.properties.tags": {"contains": "sale"}}, False),
        ({"profile.traits.first_name": {"contains": "nn"}}, True),
        ({"entry.channel": "app"}, True),
        ({"profile.cart.0.quantity": {"gte": 2}}, True),
        ({"profile.cart.5.quantity": {"exists": True}}, False),
        ({"profile.missing": {"gt": 1}}, False),  # a missing path is null, and null is not greater
        ({"event.channel": {"gt": 5}}, False),  # text against a number: not comparable, not true
        ({"all": [{"event.channel": "web"}, {"profile.consent.email": True}]}, True),
        ({"any": [{"event.channel": "app"}, {"profile.consent.sms": True}]}, False),
        ({"not": {"event.channel": "app"}}, True),
        ({"event.channel": "web", "entry.channel": "web"}, False),  # several keys: all must hold
        ({"profile.missing": {"ne": "gold"}}, True),  # a missing value equals nothing: ne and not_in hold
        ({"profile.missing": {"not_in": ["gold"]}}, True),
        ({"profile.consent.email": 1}, False),  # a boolean equals only a boolean
        ({"profile.consent.email": {"in": [1, 2]}}, False),
        ({"profile.consent.email": {"ne": 1}}, True),
        ({"profile.cart.0.quantity": True}, False),
        ({"profile.cart.0.quantity": {"in": [True]}}, False),
        ({"profile.cart.0.quantity": {"in": [2]}}, True),
    ],
)
def test_operators(cond: dict[str, Any], expected: bool) -> None:
    assert compile_condition(cond)(SCOPE) is expected


@pytest.mark.parametrize(
    ("cond", "message"),
    [
        ({"event.channel": {"like": "w%"}}, "unknown operator 'like'"),
        ({"customer.id": "x"}, "unknown path root 'customer'"),
        ({"event.channel": {"in": "web"}}, "in needs a list"),
        ({"event.channel": {"exists": "yes"}}, "exists needs true or false"),
        ({"all": []}, "all needs a non-empty list"),
        ("event.channel == 'web'", "a condition must be a non-empty mapping"),
        ({"event..x": 1}, "empty segment"),
        ({"event.channel": {"eq": {"a": 1}}}, "not a mapping"),
        ({"event.channel": {"gt": [1]}}, "not a list"),
        ({"event.channel": {"in": [{"a": 1}]}}, "not a mapping"),
        ({"profile.recent.product_view": {"gte": 1}}, "profile.recent.<event type>.<duration>"),
        ({"profile.recent.product_view.91d": {"gte": 1}}, "at most 90d"),
        ({"profile.recent.product_view.week": {"gte": 1}}, "bad duration"),
    ],
)
def test_bad_conditions_are_explained(cond: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compile_condition(cond)


def test_templates_keep_types_for_whole_placeholders_and_interpolate_in_text() -> None:
    render = compile_template(
        {
            "items": "{{ profile.cart }}",
            "value": "{{profile.cart_value}}",
            "greeting": "Ciao {{ profile.traits.first_name }}, {{ profile.traits.last_name }}!",
            "nested": ["{{ event.properties.sku }}", {"missing": "{{ profile.nope }}"}],
            "plain": 3,
        }
    )
    assert render(SCOPE) == {
        "items": [{"sku": "S-1", "quantity": 2}],
        "value": 74.9,
        "greeting": "Ciao Anna, !",
        "nested": ["S-1", {"missing": None}],
        "plain": 3,
    }


def test_template_paths_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown path root 'cart'"):
        compile_template({"x": "hello {{ cart.total }}"})


def test_contains_on_a_list_treats_booleans_apart_from_numbers() -> None:
    scope = ({"properties": {"flags": [True, 0]}}, {}, PROFILE, 0)
    assert compile_condition({"event.properties.flags": {"contains": True}})(scope)
    assert not compile_condition({"event.properties.flags": {"contains": 1}})(scope)
    assert not compile_condition({"event.properties.flags": {"contains": False}})(scope)
