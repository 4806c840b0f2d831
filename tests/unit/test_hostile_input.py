"""Hostile input never crashes the worker's decode path or the journey loader: it is refused with a reason.

Bounded for CI (fixed seed); a longer run: `ORCH_FUZZ_EXAMPLES=20000 pytest tests/unit/test_hostile_input.py`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from orchestrator.contract.events import Event, TouchpointEvent
from orchestrator.contract.loader import load
from orchestrator.stream.records import Rejected, accept

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # hypothesis' example printer (libcst)
EXAMPLES = int(os.environ.get("ORCH_FUZZ_EXAMPLES", "300"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LIMIT = 1_048_576

scalars = st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1) | st.floats(allow_nan=False)
json_values = st.recursive(
    scalars | st.text(max_size=50),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=30,
)
GOOD: dict[str, Any] = {
    "event_id": "e-1", "type": "cart_add", "occurred_at": "2026-03-02T10:00:00Z", "channel": "web",
    "customer_id": "c-1", "properties": {"sku": "S", "price": 1},
}  # fmt: skip


def check(raw: bytes) -> Event | Rejected:
    result = accept(raw, LIMIT)
    assert isinstance(result, Event | Rejected)
    if isinstance(result, Rejected):
        assert result.reason and len(result.reason) < 5000
    return result


@seed(20261126)
@FUZZ
@given(st.binary(max_size=2000))
def test_random_bytes(raw: bytes) -> None:
    check(raw)


@seed(20261126)
@FUZZ
@given(field=st.sampled_from(sorted(GOOD)), value=json_values)
def test_wrong_types_in_every_field(field: str, value: Any) -> None:
    check(orjson.dumps({**GOOD, field: value}))


@seed(20261126)
@FUZZ
@given(
    extra=st.dictionaries(st.text(max_size=20).filter(lambda k: k not in TouchpointEvent.model_fields), json_values,
                          max_size=5),
    text=st.text(max_size=300),
)  # fmt: skip
def test_unicode_and_unknown_fields_keep_a_valid_event_valid(extra: dict[str, Any], text: str) -> None:
    document = {**extra, **GOOD, "properties": {**GOOD["properties"], "name": text}}
    result = check(orjson.dumps(document))
    assert isinstance(result, Event) and result.data["properties"]["name"] == text


@seed(20261126)
@FUZZ
@given(year=st.integers(min_value=1, max_value=9999), offset=st.integers(min_value=-23, max_value=23))
def test_times_far_in_the_past_and_future(year: int, offset: int) -> None:
    stamp = f"{year:04d}-01-01T00:00:00{'+' if offset >= 0 else '-'}{abs(offset):02d}:00"
    result = check(orjson.dumps({**GOOD, "occurred_at": stamp}))
    in_utc_range = (year > 1970 or (year == 1970 and offset <= 0)) and (year < 3000 or (year == 3000 and offset > 0))
    assert isinstance(result, Event) == in_utc_range


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 100_000 + b"]" * 100_000,  # deep JSON
        b'{"a":' * 5000 + b"1" + b"}" * 5000,
        orjson.dumps({**GOOD, "type": "x" * 2_000_000}),  # huge string: over the size limit
        orjson.dumps({**GOOD, "properties": {"k": "v" * 900_000}}),  # large but under: accepted
        orjson.dumps({**GOOD, "event_id": "é" * 300}),  # too long an id
        b"\xff\xfe\x00",
        b"",
        b'{"price": Infinity}',
        b'{"n": 1' + b"0" * 400 + b"}",  # an integer no 64-bit field holds
    ],
)
def test_pathological_documents(raw: bytes) -> None:
    check(raw)


@seed(20261126)
@FUZZ
@given(text=st.text(max_size=500) | st.binary(max_size=500).map(lambda b: b.decode("latin-1")))
def test_the_journey_loader_refuses_bad_yaml_with_a_message(
    tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    folder = tmp_path_factory.mktemp("j")
    (folder / "j.yaml").write_text(text, encoding="utf-8")
    loaded = load([Path(folder)])
    assert loaded.ok or all(str(p) and p.file.endswith("j.yaml") for p in loaded.problems)


ALIAS_BOMB = (
    "".join(
        f"{name}: &{name} [{', '.join([f'*{prev}' if prev else 'x'] * 8)}]\n"
        for prev, name in [("", "a"), ("a", "b"), ("b", "c"), ("c", "d")]
    )
    + "id: x\ntrigger: {event: a}\nsteps: [*d]\n"
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("steps: " + "[" * 5000 + "]" * 5000, "nested too deeply"),
        (ALIAS_BOMB, "a step must be a mapping"),
        ("? [a, b]\n: 1\n", "not valid YAML: found unhashable key"),
        ("id: !!python/object:os.system x\n", "not valid YAML: could not determine a constructor"),
    ],
)  # fmt: skip
def test_pathological_yaml_is_refused_with_a_short_message(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "j.yaml").write_text(text)
    problems = [str(p) for p in load([tmp_path]).problems]
    assert any(message in p for p in problems), problems
    assert all(len(p) < 400 for p in problems)


@pytest.mark.parametrize("depth", [63, 200, 253, 300, 1000])
def test_nesting_that_downstream_serialisers_cannot_take_is_refused_by_name(depth: int) -> None:
    """Between JSON's own limit (1,024) and pydantic's and orjson's (~255) an event used to crash the ingest agent."""
    base = orjson.dumps({"event_id": "e", "type": "t", "occurred_at": "2026-03-02T09:00:00Z", "channel": "web",
                         "customer_id": "c"})  # fmt: skip
    raw = base[:-1] + b',"properties":{"x":' + b"[" * depth + b"]" * depth + b"}}"
    result = check(raw)
    assert isinstance(result, Rejected) and "nested too deeply" in result.reason, result
    shallow = base[:-1] + b',"properties":{"x":' + b"[" * 60 + b"]" * 60 + b"}}"
    assert isinstance(check(shallow), Event)
