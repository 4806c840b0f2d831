"""Turn pydantic's validation errors into short sentences for ops people."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

from pydantic import ValidationError
from pydantic_core import ErrorDetails

Loc = tuple[str | int, ...]


def shown(value: object, limit: int = 60) -> str:
    """A value as it appears in a message: its repr, cut short."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def dotted(loc: Iterable[str | int]) -> str:
    return ".".join(str(part) for part in loc)


def describe_error(error: ErrorDetails, known_fields: Sequence[str] = ()) -> str:
    """One pydantic error in words, e.g. `unknown field 'chanel' (did you mean 'channel'?)`."""
    kind = error["type"]
    loc = error["loc"]
    field = str(loc[-1]) if loc else ""
    if kind == "missing":
        return f"missing required field {field!r}"
    if kind == "extra_forbidden":
        hint = difflib.get_close_matches(field, known_fields, n=1)
        return f"unknown field {field!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
    message = error["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            return message[len(prefix) :]
    got = error.get("input")
    if isinstance(got, str | int | float | bool) or got is None:
        return f"{message[0].lower()}{message[1:]} (got {shown(got)})"
    return f"{message[0].lower()}{message[1:]}"


def describe_validation_error(exc: ValidationError) -> str:
    """All problems of one record on one line, each with where it is: `properties.price: ...; channel: ...`."""
    parts = []
    for error in exc.errors(include_url=False):
        where = dotted(error["loc"])
        text = describe_error(error)
        parts.append(f"{where}: {text}" if where else text)
    return "; ".join(parts)
