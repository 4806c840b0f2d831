"""What `validate` says instead of pydantic's words: the expected kind of value in plain terms, and for an unknown
field the fields valid at that very place (derived from the models, so new fields need nothing here).

`unknown_field` walks a pydantic error's location through the model's annotations (fields, list items, mapping
values, the step union's tags) to the model that rejected the key.
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Iterator, Sequence
from functools import cache
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, Tag
from pydantic_core import ErrorDetails

from orchestrator.contract.errors import shown

_SEQUENCES = (tuple, list, set, frozenset)
_LIST = "a list, such as [a, b]"
_MAPPING = "a mapping of keys to values, such as {key: value}"
EXPECTED = {  # pydantic error type -> what the value must be
    **{kind: _LIST for kind in ("list_type", "tuple_type", "set_type", "frozen_set_type", "iterable_type")},
    **{kind: _MAPPING for kind in ("dict_type", "model_type", "model_attributes_type", "mapping_type")},
    **{kind: "a whole number" for kind in ("int_type", "int_parsing", "int_parsing_size", "int_from_float")},
    **{kind: "a number" for kind in ("float_type", "float_parsing", "decimal_type", "decimal_parsing")},
    **{kind: "true or false" for kind in ("bool_type", "bool_parsing")},
    **{kind: "text" for kind in ("string_type", "string_unicode", "str_type")},
    "none_required": "left out (or null)",
}
_BOUNDS = {"greater_than": ("greater than", "gt"), "greater_than_equal": ("at least", "ge"),
           "less_than": ("less than", "lt"), "less_than_equal": ("at most", "le")}  # fmt: skip


def kind_of(value: object) -> str:
    """How a value reads in YAML terms: `text 'x'`, `a list`, `a mapping`, `nothing`."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"{str(value).lower()}"
    if isinstance(value, str):
        return f"text {shown(value)}"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return shown(value)


def plain(error: ErrorDetails) -> str | None:
    """The error as `must be a whole number (got text 'high')`, or None when pydantic's type is not a common one."""
    kind, ctx = error["type"], error.get("ctx") or {}
    got = f" (got {kind_of(error.get('input'))})"
    if kind in EXPECTED:
        return f"must be {EXPECTED[kind]}{got}"
    if kind in _BOUNDS:
        words, key = _BOUNDS[kind]
        bound = ctx.get(key)
        return f"must be {words} {int(bound) if isinstance(bound, float) and bound.is_integer() else bound}{got}"
    if kind in ("literal_error", "enum"):
        return f"must be {ctx.get('expected')}{got}"
    if kind == "string_too_short":
        least = ctx.get("min_length")
        return "must not be empty" if least == 1 else f"must have at least {least} characters"
    if kind == "string_too_long":
        return f"must have at most {ctx.get('max_length')} characters"
    if kind == "too_short":
        return f"must have at least {ctx.get('min_length')} item(s)"
    if kind == "too_long":
        return f"must have at most {ctx.get('max_length')} item(s)"
    if kind == "string_pattern_mismatch":
        return f"must match the pattern {ctx.get('pattern')}{got}"
    if kind == "multiple_of":
        return f"must be a multiple of {ctx.get('multiple_of')}{got}"
    return None


# ------------------------------------------------------------------------------------------- fields


Candidate = tuple[Any, str | None]  # a type the value may be, and the union tag that selects it


def _origin(annotation: Any) -> Any:
    """`get_origin`, typed loosely: its overloads make mypy think a check against `dict` can never hold."""
    return get_origin(annotation)


def _members(annotation: Any, tag: str | None = None) -> list[Candidate]:
    """The types a value of `annotation` may be: Annotated and unions peeled, None left out, tags kept."""
    origin = _origin(annotation)
    if origin is Annotated:
        inner, *meta = get_args(annotation)
        return _members(inner, next((m.tag for m in meta if isinstance(m, Tag)), tag))
    if origin is Union or origin is types.UnionType:
        return [member for arg in get_args(annotation) for member in _members(arg, tag)]
    return [] if annotation is type(None) else [(annotation, tag)]


def _is_model(candidate: Any) -> bool:
    return isinstance(candidate, type) and issubclass(candidate, BaseModel)


def field_names(model: type[BaseModel]) -> list[str]:
    """The keys a file writes for the model's fields (aliases such as `if`, `for`)."""
    return [info.alias or name for name, info in model.model_fields.items()]


def _field(model: type[BaseModel], key: str) -> Any:
    for name, info in model.model_fields.items():
        if key in (name, info.alias):
            return info.annotation
    return None


def _step_in(candidates: list[Candidate], part: str | int) -> list[Candidate]:
    """One step of a location: a list item, a union tag, a model's field or a mapping's value."""
    if isinstance(part, int):
        return [m for tp, _ in candidates if _origin(tp) in _SEQUENCES and get_args(tp)
                for m in _members(get_args(tp)[0])]  # fmt: skip
    tagged: list[Candidate] = [(tp, None) for tp, tag in candidates if tag == part]
    if tagged:
        return tagged
    found: list[Candidate] = []
    for tp, _ in candidates:
        if _is_model(tp) and (annotation := _field(tp, part)) is not None:
            found.extend(_members(annotation))
        elif _origin(tp) is dict and len(get_args(tp)) == 2:
            found.extend(_members(get_args(tp)[1]))
    return found


def _place(name: str, part: str | int, candidates: list[Candidate]) -> str:
    """What a place is called as a location is walked: `journey`, then `wait_for step`, then `wait_for`."""
    if isinstance(part, int):
        return name
    if any(tag == part for _, tag in candidates):
        return f"{part} step"
    return part


def model_at(root: type[BaseModel], root_name: str, loc: Sequence[str | int]) -> tuple[list[type[BaseModel]], str]:
    """The models a location (pydantic's, union tags included) can be in, and what that place is called."""
    candidates: list[Candidate] = [(root, None)]
    name = root_name
    for part in loc:
        name = _place(name, part, candidates)
        candidates = _step_in(candidates, part)
        if not candidates:
            return [], name
    return [tp for tp, _ in candidates if _is_model(tp)], name


def _walk(candidates: list[Candidate], name: str, seen: set[type[BaseModel]]) -> Iterator[tuple[str, str]]:
    for tp, tag in candidates:
        place = f"{tag} step" if tag else name
        if _is_model(tp):
            if tp in seen:
                continue
            seen.add(tp)
            for key in field_names(tp):
                yield key, "step" if key == tag else place
                yield from _walk(_members(_field(tp, key)), key, seen)
        elif _origin(tp) in _SEQUENCES and get_args(tp):
            yield from _walk(_members(get_args(tp)[0]), place, seen)
        elif _origin(tp) is dict and len(get_args(tp)) == 2:
            yield from _walk(_members(get_args(tp)[1]), place, seen)


@cache
def _places(roots: tuple[tuple[type[BaseModel], str], ...]) -> dict[str, list[str]]:
    """Every field key reachable from the roots -> the places (in walk order) where it is valid."""
    where: dict[str, list[str]] = {}
    seen: set[type[BaseModel]] = set()
    for root, root_name in roots:
        for key, place in _walk([(root, None)], root_name, seen):
            if place not in where.setdefault(key, []):
                where[key].append(place)
    return where


def _listed(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} or {items[-1]}"


def _a(word: str) -> str:
    return f"an {word}" if word[:1] in "aeiou" else f"a {word}"


def unknown_field(
    loc: Sequence[str | int], root: type[BaseModel], root_name: str, roots: tuple[tuple[type[BaseModel], str], ...]
) -> str:
    """`unknown field 'holdout': holdout is a journey field, not a policy field`, or with `(did you mean ...?)`
    among the fields valid where the key was written (never the key itself)."""
    key = str(loc[-1])
    models, here = model_at(root, root_name, loc[:-1])
    valid = sorted({name for model in models for name in field_names(model)} - {key})
    message = f"unknown field {key!r}"
    elsewhere = [place for place in _places(roots).get(key, []) if place != here][:3]
    if elsewhere:
        message += f": {key} is {_a(_listed(elsewhere))} field, not {_a(here)} field"
    hint = difflib.get_close_matches(key, valid, n=1)
    if hint:
        return f"{message} (did you mean {hint[0]!r}?)"
    if not elsewhere and valid and len(valid) <= 10:
        return f"{message}: {here} takes {', '.join(valid)}"
    return message
