"""Templating of a send's `data`: `{{ path }}` alone gives the value itself, inside text it interpolates."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson

from orchestrator.contract.conditions import Getter, Scope, compile_path

_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
Render = Callable[[Scope], Any]


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


def compile_template(value: Any) -> Render:
    """Compile a data tree once; ValueError names a bad placeholder path."""
    if isinstance(value, dict):
        items = [(str(k), compile_template(v)) for k, v in value.items()]
        return lambda scope: {k: render(scope) for k, render in items}
    if isinstance(value, list):
        renders = [compile_template(v) for v in value]
        return lambda scope: [render(scope) for render in renders]
    if not isinstance(value, str) or "{{" not in value:
        return lambda scope: value
    whole = _PLACEHOLDER.fullmatch(value.strip())
    if whole:
        get = compile_path(whole.group(1))
        return lambda scope: _detached(get(scope))
    pieces: list[str | Getter] = []
    last = 0
    for match in _PLACEHOLDER.finditer(value):
        pieces.append(value[last : match.start()])
        pieces.append(compile_path(match.group(1)))
        last = match.end()
    pieces.append(value[last:])

    def interpolate(scope: Scope) -> str:
        return "".join(p if isinstance(p, str) else _as_text(p(scope)) for p in pieces)

    return interpolate
