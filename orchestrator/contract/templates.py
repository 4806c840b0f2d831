"""Templating of a send's `data` and `template`: `{{ path }}` alone gives the value itself, inside text it
interpolates; `{{ path | default: "text" }}` gives the fallback when the value is missing or empty.

`default` is the only filter. Its argument is a quoted text (double or single quotes, `\\` escapes the quote)
or a number, `true` or `false`. Anything else in a placeholder is a ValueError that names it: the loader turns
those into `FILE:LINE: STEP: problem` lines.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson
from pydantic_core import PydanticCustomError

from orchestrator.contract.conditions import Getter, Scope, compile_path

_QUOTED = r'"(?:[^"\\]|\\.)*"|' + r"'(?:[^'\\]|\\.)*'"
# A placeholder: quoted texts (which may hold braces and bars), else anything but a quote or `}}`.
_PLACEHOLDER = re.compile(r"\{\{((?:" + _QUOTED + r"""|[^"'}]|\}(?!\}))*)\}\}""", re.S)
_FILTER = re.compile(r"\|\s*(?P<name>[^\s:|]*)\s*(?::\s*(?P<arg>" + _QUOTED + r"|[^\s|]*)\s*)?", re.S)
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_ESCAPE = re.compile(r"\\(.)", re.S)
FILTERS_HELP = 'default is the only filter, as in {{ profile.traits.first_name | default: "cliente" }}'
Render = Callable[[Scope], Any]
Text = Callable[[Scope], str]  # a compiled text template (a send's template name)


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _detached(value: Any) -> Any:
    """A copy of lists and mappings, so an emitted action never changes when the profile does later."""
    if isinstance(value, list | dict):
        return orjson.loads(orjson.dumps(value))
    return value


def _argument(raw: str | None, placeholder: str) -> Any:
    """The fallback of `default`: a quoted text, a number, true or false."""
    if not raw:
        raise ValueError(f'the default filter needs a value in {placeholder!r}: a quoted text like "cliente", '
                         f"a number, true or false")  # fmt: skip
    if raw[0] in "\"'":
        return _ESCAPE.sub(r"\1", raw[1:-1])
    if raw in ("true", "false"):
        return raw == "true"
    if _NUMBER.fullmatch(raw):
        number = float(raw)
        return int(raw) if re.fullmatch(r"-?[0-9]+", raw) else number
    raise ValueError(f"the default filter's value {raw!r} in {placeholder!r} must be a quoted text "
                     f'(default: "{raw}"), a number, true or false')  # fmt: skip


def _placeholder(inner: str) -> Getter:
    """`path | default: X | ...` -> a getter applying the filters in turn; ValueError names what is wrong."""
    shown = "{{" + inner + "}}"
    path, bar, rest = inner.partition("|")
    fallbacks: list[Any] = []
    position, filters = 0, bar + rest
    while position < len(filters):
        match = _FILTER.match(filters, position)
        if match is None or match.end() == position:
            raise ValueError(f"malformed filter {filters[position:].strip()!r} in {shown!r}: {FILTERS_HELP}")
        name = match.group("name")
        if not name:
            raise ValueError(f"a filter name is missing after '|' in {shown!r}: {FILTERS_HELP}")
        if name != "default":
            raise ValueError(f"unknown filter {name!r} in {shown!r}: {FILTERS_HELP}")
        fallbacks.append(_argument(match.group("arg"), shown))
        position = match.end()
    get = compile_path(path.strip())
    if not fallbacks:
        return get

    def filtered(scope: Scope) -> Any:
        value = get(scope)
        for fallback in fallbacks:
            if value is None or value == "":
                value = fallback
        return value

    return filtered


def _pieces(text: str) -> list[str | Getter]:
    """The text between placeholders and a getter for each placeholder, in order."""
    pieces: list[str | Getter] = []
    last = 0
    for match in [*_PLACEHOLDER.finditer(text), None]:
        literal = text[last : None if match is None else match.start()]
        start = literal.find("{{")
        if start >= 0 and "}}" in literal[start:]:  # a `{{ ... }}` the pattern refused: a quote left open
            shown = literal[start : literal.index("}}", start) + 2]
            raise ValueError(f"malformed placeholder {shown!r}: a quote is not closed ({FILTERS_HELP})")
        if start >= 0:  # it would reach customers as written
            raise ValueError(f"a placeholder is not closed: {literal[start:]!r} needs '}}}}' after the path, as in "
                             f"{{{{ profile.traits.first_name }}}}")  # fmt: skip
        pieces.append(literal)
        if match is not None:
            pieces.append(_placeholder(match.group(1)))
            last = match.end()
    return pieces


def _compile_text(text: str) -> tuple[Getter | None, Callable[[Scope], str] | None]:
    """A whole placeholder's getter, or the interpolation of the text (one of the two is None)."""
    whole = _PLACEHOLDER.fullmatch(text.strip())
    if whole:
        return _placeholder(whole.group(1)), None
    pieces = _pieces(text)

    def interpolate(scope: Scope) -> str:
        return "".join(p if isinstance(p, str) else _as_text(p(scope)) for p in pieces)

    return None, interpolate


class TemplateError(ValueError):
    """A template that does not compile; `loc` is where in the data tree (keys and list indexes)."""

    def __init__(self, message: str, loc: tuple[str | int, ...] = ()) -> None:
        super().__init__(message)
        self.loc = loc


def _within(at: str | int, value: Any) -> Render:
    try:
        return compile_template(value)
    except TemplateError as error:
        raise TemplateError(str(error), (at, *error.loc)) from None


def compile_template(value: Any) -> Render:
    """Compile a data tree once; a TemplateError (a ValueError) names a bad placeholder path or filter."""
    if isinstance(value, dict):
        items = [(str(k), _within(str(k), v)) for k, v in value.items()]
        return lambda scope: {k: render(scope) for k, render in items}
    if isinstance(value, list):
        renders = [_within(i, v) for i, v in enumerate(value)]
        return lambda scope: [render(scope) for render in renders]
    if not isinstance(value, str) or "{{" not in value:
        return lambda scope: value
    try:
        get, interpolate = _compile_text(value)
    except ValueError as error:
        raise TemplateError(str(error)) from None
    if get is not None:
        getter = get
        return lambda scope: _detached(getter(scope))
    assert interpolate is not None
    return interpolate


def compile_text(text: str) -> Text:
    """Compile a text template (a send's `template` name, e.g. `welcome-{{ profile.traits.language }}`): it always
    renders text, a whole placeholder too (null gives "", numbers as written, lists and objects as JSON)."""
    if "{{" not in text:
        return lambda scope: text
    get, interpolate = _compile_text(text)
    if get is not None:
        getter = get
        return lambda scope: _as_text(getter(scope))
    assert interpolate is not None
    return interpolate


def check_text(value: str) -> str:
    """A pydantic validator for a text template (`AfterValidator(check_text)`): ValueError when it does not compile."""
    compile_text(value)
    return value


def check_data(value: dict[str, Any]) -> dict[str, Any]:
    """A pydantic validator for a data tree (`AfterValidator(check_data)`): the error says which key is wrong, so
    the loader reports that key's line."""
    try:
        compile_template(value)
    except TemplateError as error:
        raise PydanticCustomError("template", str(error), {"loc": error.loc}) from None
    return value
