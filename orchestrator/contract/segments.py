"""segments.yaml: named audiences, each a condition on `profile.` paths.

```yaml
segments:
  vip: {profile.lifetime_value: {gte: 500}}
  vip-lapsed: {all: [{segment: vip}, {profile.recent.purchase.30d: {eq: 0}}]}
```

`{segment: NAME}` is a condition anywhere conditions are allowed (contract/conditions.py) and holds when the
profile matches that segment at that instant. The file's own checks are here; the names a journey, an offer or
another segment uses are checked against it once every file is read (`reference_problems`): an unknown name, a
cycle.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import Field

from orchestrator.contract.conditions import SEGMENT, SEGMENT_NAME, condition_paths, condition_segments
from orchestrator.contract.errors import Loc
from orchestrator.contract.values import Condition, _Model

SEGMENT_FILES = ("segments.yaml", "segments.yml")
ALL = "all"  # a scheduled trigger's `audience: all`: every known customer


class SegmentFile(_Model):
    segments: dict[str, Condition] = Field(default_factory=dict)


def name_problems(data: Mapping[str, Any]) -> Iterator[tuple[Loc, str]]:
    """(where, problem) of each segment, as written, whose name or paths are wrong: every one, not the first."""
    segments = data.get("segments")
    if not isinstance(segments, Mapping):
        return
    for name, cond in segments.items():
        if not isinstance(name, str) or not SEGMENT_NAME.fullmatch(name) or name == ALL:
            yield ("segments", str(name)), (f"bad segment name {name!r}: use lower-case letters, digits and dashes "
                                            f"('all' is every known customer)")  # fmt: skip
        wrong = [path for path in condition_paths(cond) if not path.startswith("profile.")]
        if wrong:
            yield ("segments", str(name)), (f"segment {name!r} reads {wrong[0]!r}: a segment reads only profile. "
                                            f"paths (it holds for a customer at any instant, without an event)")


def references(data: Any, loc: Loc = ()) -> Iterator[tuple[Loc, str]]:
    """(where, name) of every `{segment: NAME}` in a file as written, at any depth: what the loader checks against
    segments.yaml, with the line of each."""
    if isinstance(data, Mapping):
        for key, value in data.items():
            if key == SEGMENT and isinstance(value, str):
                yield (*loc, SEGMENT), value
            else:
                yield from references(value, (*loc, str(key)))
    elif isinstance(data, list):
        for index, item in enumerate(data):
            yield from references(item, (*loc, index))


def cycles(definitions: Mapping[str, Any]) -> list[list[str]]:
    """Each cycle of segments naming each other (`[a, b, a]`), once."""
    state: dict[str, int] = {}  # 1 visiting, 2 done
    found: list[list[str]] = []

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for other in condition_segments(definitions[name]):
            if other not in definitions:
                continue
            if state.get(other) == 1:
                found.append([*path[path.index(other):], other])
            elif state.get(other) is None:
                visit(other, [*path, other])
        state[name] = 2

    for name in definitions:
        if state.get(name) is None:
            visit(name, [name])
    return found
