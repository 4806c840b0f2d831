"""The condition language of journeys (`where`, `if`) and the paths it reads.

A condition is data, never code: `{PATH: {OP: VALUE}}`, `{PATH: VALUE}` (eq), `{all: [...]}`,
`{any: [...]}`, `{not: COND}`, `{segment: NAME}` (a segment of segments.yaml: contract/segments.py). It is checked
when a journey loads and compiled once into closures, so evaluating one on the hot path is a handful of dict lookups.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from orchestrator.timefmt import parse_duration_ms

ROOTS = ("event", "entry", "profile")
OPERATORS = ("eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "exists", "contains")
RECENT = "recent"  # profile.recent.<event type>.<duration>: a count over time (engine/profile.py keeps the times)
RECENT_MAX_MS = 90 * 86_400_000
SEGMENT = "segment"  # `{segment: vip}`: the profile matches that segment's condition
SEGMENT_NAME = re.compile(r"[a-z0-9-]+")

# What a compiled condition reads: (event, entry event, profile, now in epoch ms) as plain dicts.
Scope = tuple[Mapping[str, Any], Mapping[str, Any], Mapping[str, Any], int]
Predicate = Callable[[Scope], bool]
Getter = Callable[[Scope], Any]


def _recent(path: str, event_type: str, duration: str) -> Getter:
    """`profile.recent.product_view.7d`: how many of the customer's events of that type occurred in (now - 7d, now]."""
    try:
        window = parse_duration_ms(duration)
    except ValueError as exc:
        raise ValueError(f"bad count {path!r}: {exc}; write profile.recent.<event type>.<duration>") from None
    if window > RECENT_MAX_MS:
        raise ValueError(f"bad count {path!r}: counts over time reach back at most 90d")

    def count(scope: Scope) -> int:
        times = scope[2].get(RECENT, {}).get(event_type, ())
        now = scope[3]
        return bisect_right(times, now) - bisect_right(times, now - window)

    return count


def compile_path(path: object) -> Getter:
    """`profile.traits.tier` -> a getter; a missing step gives None. List items are reached by index."""
    if not isinstance(path, str) or not path:
        raise ValueError(f"a path must be text like profile.cart_value, got {path!r}")
    root, *parts = path.split(".")
    if root not in ROOTS:
        raise ValueError(f"unknown path root {root!r} in {path!r}: a path starts with event., entry. or profile.")
    if any(not part for part in parts):
        raise ValueError(f"bad path {path!r}: empty segment")
    if root == "profile" and parts[:1] == [RECENT] and len(parts) > 1:
        if len(parts) < 3:
            raise ValueError(f"bad count {path!r}: write profile.recent.<event type>.<duration>, e.g. "
                             "profile.recent.product_view.7d")  # fmt: skip
        return _recent(path, ".".join(parts[1:-1]), parts[-1])
    index = ROOTS.index(root)
    keys = tuple(int(part) if part.isdigit() else part for part in parts)
    if not keys:
        return lambda scope: scope[index]
    first, rest = str(keys[0]), keys[1:]  # a root is a mapping: its key is text

    def get(scope: Scope) -> Any:
        root_value: Any = scope[index]
        value = root_value.get(first)
        for key in rest:
            if isinstance(value, Mapping):
                value = value.get(str(key) if isinstance(key, int) else key)
            elif isinstance(value, list) and isinstance(key, int):
                value = value[key] if key < len(value) else None
            else:
                return None
        return value

    return get


def _same(got: Any, want: Any) -> bool:
    """Equality in which a boolean equals only a boolean (Python has True == 1)."""
    return isinstance(got, bool) == isinstance(want, bool) and bool(got == want)


def _scalar(op: str, want: Any) -> None:
    """Refuse a mapping (or, except for eq and ne, a list) as a comparison value: it would never match."""
    if isinstance(want, Mapping) or (isinstance(want, list) and op not in ("eq", "ne")):
        kind = "a mapping" if isinstance(want, Mapping) else "a list"
        raise ValueError(f"{op} compares with a number, text, true/false or null, not {kind} ({want!r})")


def _compare(op: str, want: Any) -> Callable[[Any], bool]:
    if op in ("eq", "ne", "gt", "gte", "lt", "lte", "contains"):
        _scalar(op, want)

    def ordered(test: Callable[[Any, Any], bool]) -> Callable[[Any], bool]:
        def check(got: Any) -> bool:
            if got is None or isinstance(got, bool) != isinstance(want, bool):
                return False
            try:
                return test(got, want)
            except TypeError:  # a number against text: not comparable, so not true
                return False

        return check

    if op == "eq":
        return lambda got: _same(got, want)
    if op == "ne":  # a missing value is not equal to anything: ne holds
        return lambda got: not _same(got, want)
    if op in ("in", "not_in"):
        if not isinstance(want, list):
            raise ValueError(f"{op} needs a list, e.g. {{{op}: [web, app]}}")
        for member in want:
            _scalar(op, member)
        members = tuple(want)
        texts = frozenset(want) if all(type(m) is str for m in want) else None  # `channel: {in: [web, app]}`

        def member(got: Any) -> bool:
            if texts is not None:  # only text equals text: a set lookup, as _same would find
                return isinstance(got, str) and got in texts
            return any(_same(got, m) for m in members)

        return member if op == "in" else (lambda got: not member(got))
    if op == "gt":
        return ordered(lambda got, w: bool(got > w))
    if op == "gte":
        return ordered(lambda got, w: bool(got >= w))
    if op == "lt":
        return ordered(lambda got, w: bool(got < w))
    if op == "lte":
        return ordered(lambda got, w: bool(got <= w))
    if op == "exists":
        if not isinstance(want, bool):
            raise ValueError("exists needs true or false")
        return (lambda got: got is not None) if want else (lambda got: got is None)
    if op == "contains":

        def contains(got: Any) -> bool:
            if isinstance(got, str):
                return isinstance(want, str) and want in got
            if isinstance(got, list):
                return any(_same(item, want) for item in got)
            if isinstance(got, Mapping):
                return isinstance(want, str) and want in got
            return False

        return contains
    raise ValueError(f"unknown operator {op!r}: use one of {', '.join(OPERATORS)}")


def _leaf(path: str, spec: Any) -> Predicate:
    get = compile_path(path)
    if isinstance(spec, Mapping) and spec:
        tests = []
        for op, want in spec.items():
            tests.append(_compare(str(op), want))
        if len(tests) == 1:
            only = tests[0]
            return lambda scope: only(get(scope))
        return lambda scope: all(test(get(scope)) for test in tests)
    if isinstance(spec, Mapping):
        raise ValueError(f"empty test for {path!r}: write e.g. {{{path}: {{eq: value}}}}")
    test = _compare("eq", spec)
    return lambda scope: test(get(scope))


def _segment(name: Any, segments: Mapping[str, Predicate] | None) -> Predicate:
    if not isinstance(name, str) or not SEGMENT_NAME.fullmatch(name):
        raise ValueError(f"segment takes the name of a segment of segments.yaml (lower-case letters, digits and "
                         f"dashes), got {name!r}")  # fmt: skip
    if segments is None:  # checked only (a journey file alone): the loader checks the name against segments.yaml

        def unbound(scope: Scope) -> bool:
            raise LookupError(f"segment {name!r} was compiled without segments.yaml")

        return unbound
    test = segments.get(name)
    if test is None:
        raise ValueError(f"unknown segment {name!r}: not in segments.yaml")
    return test


def compile_condition(cond: Any, segments: Mapping[str, Predicate] | None = None) -> Predicate:
    """Check and compile a condition; ValueError names the part that is wrong. `segments`: the compiled segments a
    `{segment: NAME}` reads (None: only check its form)."""
    if not isinstance(cond, Mapping) or not cond:
        raise ValueError(
            f"a condition must be a non-empty mapping like {{profile.cart_value: {{gte: 30}}}}, got {cond!r}"
        )
    parts: list[Predicate] = []
    for key, spec in cond.items():
        if key in ("all", "any"):
            if not isinstance(spec, list) or not spec:
                raise ValueError(f"{key} needs a non-empty list of conditions")
            subs = [compile_condition(sub, segments) for sub in spec]
            parts.append(_all(subs) if key == "all" else _any(subs))
        elif key == "not":
            parts.append(_not(compile_condition(spec, segments)))
        elif key == SEGMENT:
            parts.append(_segment(spec, segments))
        else:
            parts.append(_leaf(str(key), spec))
    return parts[0] if len(parts) == 1 else _all(parts)


def _all(parts: list[Predicate]) -> Predicate:
    return lambda scope: all(p(scope) for p in parts)


def _any(parts: list[Predicate]) -> Predicate:
    return lambda scope: any(p(scope) for p in parts)


def _not(part: Predicate) -> Predicate:
    return lambda scope: not part(scope)


def condition_paths(cond: Any) -> Iterator[str]:
    """Every path a (valid) condition reads itself (a segment's read `profile.` paths only)."""
    if not isinstance(cond, Mapping):
        return
    for key, spec in cond.items():
        if key in ("all", "any") and isinstance(spec, list):
            for sub in spec:
                yield from condition_paths(sub)
        elif key == "not":
            yield from condition_paths(spec)
        elif key != SEGMENT:
            yield str(key)


def condition_segments(cond: Any) -> Iterator[str]:
    """Every segment name a (valid) condition names."""
    if not isinstance(cond, Mapping):
        return
    for key, spec in cond.items():
        if key in ("all", "any") and isinstance(spec, list):
            for sub in spec:
                yield from condition_segments(sub)
        elif key == "not":
            yield from condition_segments(spec)
        elif key == SEGMENT and isinstance(spec, str):
            yield spec


Parts = tuple[tuple[dict[str, Any], Predicate], ...]


def compile_parts(cond: Mapping[str, Any], segments: Mapping[str, Predicate] | None = None) -> Parts:
    """A condition's top-level parts, each compiled: `failing` names the one that does not hold."""
    return tuple(({str(key): spec}, compile_condition({key: spec}, segments)) for key, spec in cond.items())


def compile_segments(definitions: Mapping[str, Any]) -> dict[str, Predicate]:
    """segments.yaml's conditions, compiled (each after the segments it names); ValueError on an unknown name or
    a cycle (the loader reports both with file and line first)."""
    compiled: dict[str, Predicate] = {}
    waiting = dict(definitions)
    while waiting:
        ready = [name for name, cond in waiting.items() if all(s in compiled for s in condition_segments(cond))]
        if not ready:
            name, cond = next(iter(waiting.items()))
            missing = next(s for s in condition_segments(cond) if s not in compiled)
            why = "a cycle" if missing in waiting else "unknown"
            raise ValueError(f"segment {name!r} names segment {missing!r}: {why}")
        for name in ready:
            compiled[name] = compile_condition(waiting.pop(name), compiled)
    return compiled


def failing(parts: Parts, scope: Scope) -> dict[str, Any] | None:
    """The first part that does not hold (what `not_entered` shows), or None when all hold."""
    for part, test in parts:  # a loop, not next() over a generator: on the hot path of every trigger
        if not test(scope):
            return part
    return None
