"""Templates: the `default` filter, the errors for any other filter, and text templates (a send's `template`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import pytest
from pydantic import AfterValidator, BaseModel, ValidationError

from orchestrator.contract.conditions import Scope
from orchestrator.contract.loader import load
from orchestrator.contract.templates import (
    FILTERS_HELP,
    TemplateError,
    check_data,
    check_text,
    compile_template,
    compile_text,
)
from tests.helpers import ev, journey, run

PROFILE: dict[str, Any] = {"traits": {"first_name": "", "language": "it", "tier": None}, "orders": 0,
                           "cart": [{"sku": "S-1"}], "consent": {"email": False}}  # fmt: skip
SCOPE: Scope = ({"type": "cart_add", "properties": {"sku": "S-1"}}, {}, PROFILE, 0)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ('{{ profile.traits.first_name | default: "cliente" }}', "cliente"),  # empty text
        ("{{ profile.traits.nickname | default: 'amico' }}", "amico"),  # missing
        ("{{ profile.traits.tier | default: \"base\" }}", "base"),  # null
        ("{{ profile.traits.language | default: \"en\" }}", "it"),  # present: untouched
        ("{{ profile.orders | default: 5 }}", 0),  # zero is a value, not a missing one
        ("{{ profile.consent.email | default: true }}", False),
        ("{{ profile.nope | default: 3 }}", 3),
        ("{{ profile.nope | default: -2.5 }}", -2.5),
        ("{{ profile.nope|default:true}}", True),
        ("{{ profile.nope | default: false }}", False),
        ('{{ profile.nope | default: "a }} | b" }}', "a }} | b"),  # quotes may hold braces and bars
        ('{{ profile.nope | default: "say \\"hi\\"" }}', 'say "hi"'),
        ("{{ profile.nope | default: 'it\\'s' }}", "it's"),
        ('{{ profile.nope | default: "" | default: "second" }}', "second"),  # filters apply in turn
        ("{{ profile.cart | default: \"none\" }}", [{"sku": "S-1"}]),
    ],
)
def test_default_gives_the_fallback_when_the_value_is_missing_or_empty(template: str, expected: Any) -> None:
    assert compile_template(template)(SCOPE) == expected


def test_default_inside_text_interpolates_the_fallback() -> None:
    text = 'Ciao {{ profile.traits.first_name | default: "cliente" }}, {{ profile.nope | default: 10 }}% off'
    render = compile_template({"greeting": text + " {{ profile.traits.language }}"})
    assert render(SCOPE) == {"greeting": "Ciao cliente, 10% off it"}


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ x | upper }}", "unknown filter 'upper' in '{{ x | upper }}': default is the only filter"),
        ("Hi {{ profile.traits.first_name | capitalize }}", "unknown filter 'capitalize'"),
        ('{{ profile.a | default: "x" | upper }}', "unknown filter 'upper'"),
        ("{{ profile.a | }}", "a filter name is missing after '|'.*default is the only filter"),
        ("{{ profile.a || default: 1 }}", "a filter name is missing"),
        ("{{ profile.a | default }}", "the default filter needs a value"),
        ("{{ profile.a | default: }}", "the default filter needs a value"),
        ("{{ profile.a | default: cliente }}", "the default filter's value 'cliente' .* must be a quoted text"),
        ("{{ profile.a | default: null }}", "must be a quoted text"),
        ('{{ profile.a | default: "x" y }}', "malformed filter 'y'.*default is the only filter"),
        ('hi {{ profile.a | default: "open }} there', "malformed placeholder .*a quote is not closed"),
        ('{{ profile.a | default: "open }} {{ profile.b }}', "a quote is not closed"),
        ("{{ cart.total | default: 1 }}", "unknown path root 'cart'"),
    ],
)
def test_other_filters_and_malformed_ones_are_refused_by_name(template: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compile_template({"x": template})
    with pytest.raises(ValueError, match=message):
        compile_text(template)


def test_a_template_error_says_where_in_the_data_it_is() -> None:
    with pytest.raises(TemplateError) as caught:
        compile_template({"a": 1, "b": ["ok", {"c": "{{ profile.x | upper }}"}]})
    assert caught.value.loc == ("b", 1, "c")


class _Send(BaseModel):
    template: Annotated[str, AfterValidator(check_text)]
    data: Annotated[dict[str, Any], AfterValidator(check_data)] = {}


def test_the_validators_refuse_bad_templates_and_keep_good_ones() -> None:
    good = _Send(template="welcome-{{ profile.traits.language }}", data={"n": "{{ profile.x | default: 1 }}"})
    assert good.template == "welcome-{{ profile.traits.language }}"
    with pytest.raises(ValidationError, match="unknown filter 'upper'"):
        _Send(template="welcome-{{ profile.traits.language | upper }}")
    with pytest.raises(ValidationError) as caught:
        _Send(template="t", data={"items": ["{{ profile.cart | lower }}"]})
    (error,) = caught.value.errors()
    assert error["loc"] == ("data",) and error["ctx"] == {"loc": ("items", 0)}  # the loader reports that line
    assert "unknown filter 'lower'" in error["msg"]


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("cart-reminder", "cart-reminder"),
        ("welcome-{{ profile.traits.language }}", "welcome-it"),
        ("welcome-{{ profile.traits.country | default: \"en\" }}", "welcome-en"),
        ("{{ profile.traits.language }}", "it"),
        ("{{ profile.orders }}", "0"),  # a whole placeholder still gives text
        ("{{ profile.consent.email }}", "false"),
        ("{{ profile.cart }}", '[{"sku":"S-1"}]'),
        ("{{ profile.traits.nickname }}", ""),  # missing: empty text (the engine decides what an empty name means)
        ("promo-{{ event.properties.sku }}-{{ profile.traits.tier }}", "promo-S-1-"),
    ],
)
def test_compile_text_always_renders_text(template: str, expected: str) -> None:
    assert compile_text(template)(SCOPE) == expected
    assert check_text(template) == template


def test_validate_names_the_file_and_line_of_a_bad_filter(tmp_path: Path) -> None:
    (tmp_path / "welcome.yaml").write_text("""id: welcome
trigger: {event: identify}
steps:
  - send:
      channel: email
      template: "welcome-{{ profile.traits.language | default: 'en' }}"
      data:
        items: "{{ profile.cart }}"
        greeting: "Ciao {{ profile.traits.first_name | upper }}"
  - send:
      channel: push
      template: "promo-{{ profile.traits.tier | capitalize }}"
""")
    found = [str(problem) for problem in load([tmp_path]).problems]
    assert found == [
        f"{tmp_path}/welcome.yaml:9: steps.0.send.data.greeting: unknown filter 'upper' in "
        "'{{ profile.traits.first_name | upper }}': " + FILTERS_HELP,
        f"{tmp_path}/welcome.yaml:12: steps.1.send.template: unknown filter 'capitalize' in "
        "'{{ profile.traits.tier | capitalize }}': " + FILTERS_HELP,
    ]


@pytest.mark.parametrize(
    "template",
    ["Ciao {{ profile.traits.first_name", "t-{{ profile.traits.lang", "{{ x }", "a {{ profile.orders }} b {{ c"],
)
def test_an_unclosed_placeholder_is_refused_before_it_reaches_customers(template: str) -> None:
    with pytest.raises(ValueError, match="a placeholder is not closed"):
        compile_text(template)
    with pytest.raises(TemplateError, match="a placeholder is not closed"):
        compile_template({"greeting": template})


def test_validate_names_the_file_and_line_of_an_unclosed_placeholder(tmp_path: Path) -> None:
    (tmp_path / "welcome.yaml").write_text("""id: welcome
trigger: {event: identify}
steps:
  - send:
      channel: email
      template: "t-{{ profile.traits.lang"
      data: {greeting: "Ciao {{ profile.traits.first_name"}
""")
    found = [str(p).removeprefix(f"{tmp_path}/") for p in load([tmp_path]).problems]
    assert [p.split(": a placeholder")[0] for p in found] == [
        "welcome.yaml:6: steps.0.send.template", "welcome.yaml:7: steps.0.send.data.greeting"]  # fmt: skip


def test_numbers_keep_the_form_they_were_written_in() -> None:
    """`"price": 10` prints 10, not 10.0, in customer copy and data; a cart of 10 + 10 totals 20; 59.9 stays."""
    flow = journey("""id: n
trigger: {event: cart_add}
reentry: always
steps:
  - send:
      channel: email
      template: "t-{{ event.properties.price }}"
      data: {p: "p={{ event.properties.price }}", price: "{{ event.properties.price }}",
             total: "Totale {{ profile.cart_value }} EUR", fallback: "{{ profile.x | default: 10 }}",
             text: "{{ profile.x | default: 59.9 }} e {{ profile.y | default: 7 }}"}
""")
    result = run(flow, [ev("cart_add", "2026-03-02T10:00:00Z", sku="A", price=10),
                        ev("cart_add", "2026-03-02T10:01:00Z", sku="B", price=10),
                        ev("cart_add", "2026-03-02T10:02:00Z", sku="C", price=59.9)])  # fmt: skip
    first, second, third = result.actions
    assert first["template"] == "t-10"
    assert first["data"] == {"p": "p=10", "price": 10, "total": "Totale 10 EUR", "fallback": 10, "text": "59.9 e 7"}
    assert second["data"]["total"] == "Totale 20 EUR"
    assert third["template"] == "t-59.9" and third["data"]["total"] == "Totale 79.9 EUR"
