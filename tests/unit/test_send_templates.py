"""A send's `template` name is itself a template: per language, with a `default`."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tests.helpers import ev, journey, kinds, run

WELCOME = """
id: welcome
trigger: {event: identify}
steps:
  - send:
      channel: email
      template: "welcome-{{ profile.traits.language | default: 'en' }}"
      data: {name: "{{ profile.traits.first_name | default: \\"cliente\\" }}"}
"""


def test_the_template_name_renders_per_customer_with_its_default() -> None:
    events = [ev("identify", "2026-03-01T10:00:00Z", language="it", first_name="Anna"),
              ev("identify", "2026-03-01T10:00:00Z", customer="c-2")]  # fmt: skip
    result = run(journey(WELCOME), events)
    assert [(a["template"], a["data"]) for a in result.actions] == [
        ("welcome-it", {"name": "Anna"}), ("welcome-en", {"name": "cliente"})]  # fmt: skip
    assert [r["template"] for r in kinds(result, "sent")] == ["welcome-it", "welcome-en"]


def test_a_template_name_that_renders_empty_is_suppressed() -> None:
    name = "\"welcome-{{ profile.traits.language | default: 'en' }}\""
    j = journey(WELCOME.replace(name, '"{{ profile.traits.t }}"'))
    result = run(j, [ev("identify", "2026-03-01T10:00:00Z")])
    assert result.actions == [] and [r["reason"] for r in kinds(result, "suppressed")] == ["no_template"]


def test_an_unknown_filter_in_a_template_name_is_refused() -> None:
    with pytest.raises(ValidationError, match="upper"):
        journey(WELCOME.replace("default: 'en'", "upper"))
