"""`validate` in plain words: hints that name only fields valid where the key was written, what kind of value was
expected instead of pydantic's wording, and a line for every problem (an empty file included)."""

from pathlib import Path

import pytest

from orchestrator.contract.hints import field_names, model_at
from orchestrator.contract.journeys import Journey, Policy, SendSpec, Trigger, WaitForSpec
from orchestrator.contract.loader import ROOTS, load

VALID = """\
id: cart
trigger: {event: cart_add}
steps:
  - wait: 30m
  - send: {channel: email, template: reminder}
"""


def problems(tmp_path: Path, text: str, name: str = "j.yaml") -> list[str]:
    (tmp_path / name).write_text(text)
    return [str(p).removeprefix(f"{tmp_path}/") for p in load([tmp_path]).problems]


def journey_problems(tmp_path: Path, replace: str, by: str) -> list[str]:
    assert replace in VALID
    return problems(tmp_path, VALID.replace(replace, by, 1))


def test_a_journey_field_in_the_policy_is_named_as_such_never_suggested_as_itself(tmp_path: Path) -> None:
    found = problems(tmp_path, "holdout: 10%\n", "policy.yaml")
    assert len(found) == 1 and found[0].startswith("policy.yaml:1: unknown field 'holdout'")
    assert "holdout is a journey field, not a policy field" in found[0]
    assert "did you mean 'holdout'" not in found[0]


def test_a_hint_names_only_fields_of_the_place_where_the_key_is(tmp_path: Path) -> None:
    (found,) = journey_problems(tmp_path, "  - wait: 30m", '  - wait_until: {time: "10:00", date: "10:00"}')
    assert found.startswith("j.yaml:4: steps.0.wait_until: unknown field 'date'")
    assert "'data'" not in found  # `data` belongs to a send, not to wait_until
    hinted = found.partition("did you mean ")[2]
    if hinted:  # any hint is a field of wait_until
        models, _ = model_at(Journey, "journey", ("steps", 0, "wait_until", "wait_until"))
        assert hinted.split("'")[1] in {name for model in models for name in field_names(model)}


@pytest.mark.parametrize(
    ("replace", "by", "expected"),
    [
        ("template: reminder}", "template: reminder, tempalte: x}",
         "j.yaml:5: steps.1.send: unknown field 'tempalte' (did you mean 'template'?)"),
        ("{event: cart_add}", "{event: cart_add, timeout: 1d}",
         "j.yaml:2: trigger: unknown field 'timeout': timeout is a wait_for field, not a trigger field"),
        ("template: reminder}", "template: reminder, on_event: []}",
         "j.yaml:5: steps.1.send: unknown field 'on_event': on_event is a wait_for step field, not a send field"),
        ("steps:", "wait: 1m\nsteps:", "j.yaml:3: unknown field 'wait': wait is a step field, not a journey field"),
    ],
)  # fmt: skip
def test_unknown_fields_say_where_they_belong(tmp_path: Path, replace: str, by: str, expected: str) -> None:
    found = journey_problems(tmp_path, replace, by)
    assert any(line.startswith(expected) for line in found), found


def test_valid_fields_come_from_the_models_at_the_location() -> None:
    """Walking pydantic's location (union tags included) reaches the model that rejected the key, so a field the
    models gain is known here without a list to keep."""
    assert model_at(Journey, "journey", ("steps", 2, "send", "send")) == ([SendSpec], "send")
    assert model_at(Journey, "journey", ("steps", 0, "wait_for", "wait_for")) == ([WaitForSpec], "wait_for")
    assert model_at(Journey, "journey", ("trigger",)) == ([Trigger], "trigger")
    assert model_at(Policy, "policy", ()) == ([Policy], "policy")
    assert set(field_names(Journey)) >= {"id", "trigger", "steps", "holdout"}
    assert {name for _, name in ROOTS} == {"journey", "policy", "catalogue", "segments file"}


@pytest.mark.parametrize(
    ("replace", "by", "expected"),
    [
        ("steps:", "exit_on: purchase\nsteps:",
         "j.yaml:3: exit_on: must be a list, such as [a, b] (got text 'purchase')"),
        ("template: reminder}", "template: reminder, data: [1]}",
         "j.yaml:5: steps.1.send.data: must be a mapping of keys to values, such as {key: value} (got a list)"),
        ("steps:", "priority: high\nsteps:", "j.yaml:3: priority: must be a whole number (got text 'high')"),
        ("steps:", "enabled: maybe\nsteps:", "j.yaml:3: enabled: must be true or false (got text 'maybe')"),
        ("template: reminder}", "template: [x]}", "j.yaml:5: steps.1.send.template: must be text (got a list)"),
        ("template: reminder}", "template: reminder, fallback: push}",
         "j.yaml:5: steps.1.send.fallback: must be a list, such as [a, b] (got text 'push')"),
        ("  - wait: 30m", "  - split: {weight: 1}",
         "j.yaml:4: steps.0.split: must be a list, such as [a, b] (got a mapping)"),
        ("  - wait: 30m", "  - split: [{weight: x, steps: [exit]}]",
         "j.yaml:4: steps.0.split.0.weight: must be a number (got text 'x')"),
        ("template: reminder}", "template: \"\"}", "j.yaml:5: steps.1.send.template: must not be empty"),
        ("steps:", "version: 0\nsteps:", "j.yaml:3: version: must be at least 1 (got the number 0)"),
    ],
)  # fmt: skip
def test_type_errors_say_what_was_expected_in_plain_words(tmp_path: Path, replace: str, by: str, expected: str) -> None:
    found = journey_problems(tmp_path, replace, by)
    assert expected in found, found
    assert not any("input should" in line.lower() or "valid tuple" in line or "valid dict" in line for line in found)


def test_the_policy_and_the_catalogue_speak_the_same_plain_words(tmp_path: Path) -> None:
    found = problems(tmp_path, "max_per_day: [1]\nconsent_required: email\n", "policy.yaml")
    assert "policy.yaml:1: max_per_day: must be a mapping of keys to values, such as {key: value} (got a list)" in found
    assert "policy.yaml:2: consent_required: must be a list, such as [a, b] (got text 'email')" in found


def test_an_empty_journey_file_has_line_1(tmp_path: Path) -> None:
    assert problems(tmp_path, "") == ["j.yaml:1: the file is empty: a journey needs id, trigger and steps"]
    assert problems(tmp_path, "# nothing but a comment\n") == [
        "j.yaml:1: the file is empty: a journey needs id, trigger and steps"
    ]
