"""Load journeys and the contact policy from YAML files, collecting every problem with file and line.

Nothing here raises on bad input: `load` returns what it could read plus a list of `Problem`s,
so `validate`, `simulate` and the worker all print the same messages.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from orchestrator.contract.errors import Loc, describe_error, dotted
from orchestrator.contract.hints import plain, unknown_field
from orchestrator.contract.journeys import (
    STEP_TYPES,
    AnyStep,
    DecideStep,
    IfStep,
    Journey,
    Policy,
    SplitStep,
    WaitForStep,
)
from orchestrator.contract.offers import Catalogue
from orchestrator.contract.segments import ALL, SEGMENT_FILES, SegmentFile, cycles, name_problems, references

POLICY_NAMES = ("policy.yaml", "policy.yml")
OFFER_NAMES = ("offers.yaml", "offers.yml")
_TAGS = (*STEP_TYPES, "unknown")
# What each kind of file is called in messages: `holdout is a journey field, not a policy field`.
ROOTS: tuple[tuple[type[BaseModel], str], ...] = (
    (Journey, "journey"), (Policy, "policy"), (Catalogue, "catalogue"), (SegmentFile, "segments file"),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Problem:
    file: str
    line: int | None
    where: str
    message: str

    def __str__(self) -> str:
        place = f"{self.file}:{self.line}" if self.line else self.file
        return f"{place}: {self.where}: {self.message}" if self.where else f"{place}: {self.message}"


@dataclass(slots=True)
class Loaded:
    journeys: list[Journey] = field(default_factory=list)
    policy: Policy = field(default_factory=Policy)
    policy_file: str | None = None
    catalogue: Catalogue = field(default_factory=Catalogue)
    catalogue_file: str | None = None
    files: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)  # `id@version` -> the YAML text it came from
    lines: dict[str, dict[Loc, int]] = field(default_factory=dict)  # file -> line of each key and item
    origins: dict[str, str] = field(default_factory=dict)  # `id@version` -> its file
    segments: dict[str, dict[str, Any]] = field(default_factory=dict)  # segments.yaml: name -> condition
    segments_file: str | None = None
    segments_written: dict[str, Any] = field(default_factory=dict)  # as written, even in a file with problems
    segment_uses: list[tuple[str, Loc, str]] = field(default_factory=list)  # (file, where, name) of `{segment: X}`

    @property
    def ok(self) -> bool:
        return not self.problems


def _line_map(node: yaml.Node, path: Loc, lines: dict[Loc, int], dupes: list[tuple[Loc, int]]) -> None:
    """Record the 1-based line of every mapping key and sequence item; note duplicate keys."""
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            child = (*path, key)
            if key in seen:
                dupes.append((child, key_node.start_mark.line + 1))
            seen.add(key)
            lines[child] = key_node.start_mark.line + 1
            _line_map(value_node, child, lines, dupes)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _line_map(item, (*path, index), lines, dupes)


def _strip_tags(loc: Sequence[str | int]) -> Loc:
    """Pydantic puts the union tag after a step's index (`steps.2.send.send.channel`) and `[key]` after a mapping
    key it rejects (`score.weights.profil.x.[key]`); ops need neither."""
    out: list[str | int] = []
    for i, part in enumerate(loc):
        if (i > 0 and isinstance(loc[i - 1], int) and part in _TAGS) or part == "[key]":
            continue
        out.append(part)
    return tuple(out)


def _line_for(loc: Loc, lines: dict[Loc, int]) -> int | None:
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def _validation_problems(
    file: str, exc: ValidationError, lines: dict[Loc, int], model: type[BaseModel]
) -> list[Problem]:
    root_name = next(name for root, name in ROOTS if root is model)
    errors = [(_strip_tags((*e["loc"], *(e.get("ctx") or {}).get("loc", ()))), e)  # a model check may say where
              for e in exc.errors(include_url=False)]  # fmt: skip
    problems = []
    for loc, error in errors:
        nested = any(other[: len(loc)] == loc and len(other) > len(loc) for other, _ in errors)
        if error["type"] == "too_short" and nested:
            continue  # "steps too short" only restates the broken steps reported beside it
        where = dotted(loc[:-1]) if error["type"] in ("missing", "extra_forbidden") else dotted(loc)
        if error["type"] == "extra_forbidden":
            message = unknown_field(error["loc"], model, root_name, ROOTS)
        else:
            message = plain(error) or describe_error(error)
        problems.append(Problem(file, _line_for(loc, lines), where, message))
    return problems


def _walk(steps: Iterable[AnyStep], base: Loc) -> Iterable[tuple[Loc, AnyStep]]:
    for index, step in enumerate(steps):
        loc = (*base, index)
        yield loc, step
        if isinstance(step, WaitForStep):
            yield from _walk(step.on_event, (*loc, "on_event"))
            yield from _walk(step.on_timeout, (*loc, "on_timeout"))
        elif isinstance(step, IfStep):
            yield from _walk(step.then, (*loc, "then"))
            yield from _walk(step.else_, (*loc, "else"))
        elif isinstance(step, DecideStep):
            yield from _walk(step.on_none, (*loc, "on_none"))
        elif isinstance(step, SplitStep):
            for arm_index, arm in enumerate(step.split):
                yield from _walk(arm.steps, (*loc, "split", arm_index, "steps"))


def walk_steps(journey: Journey) -> Iterable[tuple[str, AnyStep]]:
    """Every step with its path (`steps.2.on_timeout.0`), depth first, in file order."""
    for loc, step in _walk(journey.steps, ("steps",)):
        yield dotted(loc), step


_NESTED = ("then", "else", "on_event", "on_timeout", "on_none")  # a step's own lists of steps


def _raw_steps(steps: Any, base: Loc) -> Iterable[tuple[Loc, Any]]:
    """(loc, step mapping) of every step as written, depth first in file order: duplicates are found even in a
    journey with other problems (every problem, every time)."""
    if not isinstance(steps, list):
        return
    for index, step in enumerate(steps):
        if not isinstance(step, dict):
            continue
        loc = (*base, index)
        yield loc, step
        for key in _NESTED:
            yield from _raw_steps(step.get(key), (*loc, key))
        arms = step.get("split")
        for arm_index, arm in enumerate(arms if isinstance(arms, list) else []):
            if isinstance(arm, dict):
                yield from _raw_steps(arm.get("steps"), (*loc, "split", arm_index, "steps"))


def _duplicate_problems(file: str, items: Iterable[tuple[Loc, Any]], what: str, lines: dict[Loc, int]) -> list[
    Problem
]:  # fmt: skip
    """An `id` given to two steps (or two offers), at the second one's line."""
    problems: list[Problem] = []
    seen: dict[str, Loc] = {}
    for loc, item in items:
        ident = item.get("id")
        if not isinstance(ident, str):
            continue
        if ident in seen:
            where = dotted(loc) if what == "step" else f"{dotted(loc)}.id"
            message = f"duplicate {what} id {ident!r} (also at {dotted(seen[ident])})"
            problems.append(Problem(file, _line_for((*loc, "id"), lines), where, message))
        else:
            seen[ident] = loc
    return problems


def _deep_line(text: str, depth: int = 100) -> int:
    """The line where flow brackets or indentation first nest `depth` deep (where to look in a bomb)."""
    level = 0
    for number, line in enumerate(text.splitlines(), 1):
        for char in line:
            level += (char in "[{") - (char in "]}")
            if level >= depth:
                return number
        if len(line) - len(line.lstrip(" ")) >= 2 * depth:
            return number
    return 1


def _read_yaml(file: str, text: str) -> tuple[Any, dict[Loc, int], list[Problem]]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except RecursionError:
        return None, {}, [Problem(file, _deep_line(text), "", "not valid YAML: nested too deeply")]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = getattr(exc, "problem", None) or str(exc)
        return None, {}, [Problem(file, line, "", f"not valid YAML: {reason}")]
    lines: dict[Loc, int] = {}
    dupes: list[tuple[Loc, int]] = []
    if node is not None:
        _line_map(node, (), lines, dupes)
    problems = [Problem(file, line, dotted(loc), f"key {loc[-1]!r} is given twice") for loc, line in dupes]
    return data, lines, problems


def load_file(path: Path, into: Loaded) -> int | None:
    """Read one file into `into`; returns the line of the journey's id when a journey was added."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        into.problems.append(Problem(file, None, "", f"cannot read the file: {exc}"))
        return None
    into.files.append(file)
    data, lines, problems = _read_yaml(file, text)
    into.problems.extend(problems)
    if problems:
        return None
    into.lines[file] = lines
    is_policy = path.name in POLICY_NAMES
    is_catalogue = path.name in OFFER_NAMES
    is_segments = path.name in SEGMENT_FILES
    into.segment_uses.extend((file, loc, name) for loc, name in references(data))
    trigger = data.get("trigger") if isinstance(data, dict) and not (is_policy or is_catalogue) else None
    if isinstance(trigger, dict) and isinstance(trigger.get("audience"), str) and trigger["audience"] != ALL:
        into.segment_uses.append((file, ("trigger", "audience"), trigger["audience"]))  # a schedule's audience
    if data is None:
        if is_catalogue:
            into.catalogue_file = file
        elif is_segments:
            into.segments_file = file
        elif not is_policy:
            into.problems.append(Problem(file, 1, "", "the file is empty: a journey needs id, trigger and steps"))
        return None
    if not isinstance(data, dict):
        what = ("the contact policy" if is_policy else "the offer catalogue" if is_catalogue
                else "segments.yaml" if is_segments else "a journey")  # fmt: skip
        into.problems.append(Problem(file, 1, "", f"{what} must be a YAML mapping, got {type(data).__name__}"))
        return None
    model: type[BaseModel] = (Policy if is_policy else Catalogue if is_catalogue else SegmentFile if is_segments
                              else Journey)  # fmt: skip
    if model is Journey:
        into.problems.extend(_duplicate_problems(file, _raw_steps(data.get("steps"), ("steps",)), "step", lines))
    elif model is SegmentFile:
        written, into.segments_file = data.get("segments"), file
        into.segments_written = {str(k): v for k, v in written.items()} if isinstance(written, dict) else {}
        into.problems.extend(Problem(file, _line_for(loc, lines), dotted(loc), message)
                             for loc, message in name_problems(data))  # fmt: skip
    elif model is Catalogue:
        offers = data.get("offers")
        listed = enumerate(offers if isinstance(offers, list) else [])
        into.problems.extend(_duplicate_problems(file, ((("offers", i), o) for i, o in listed if isinstance(o, dict)),
                                                 "offer", lines))  # fmt: skip
    try:
        parsed = model.model_validate(data)
    except ValidationError as exc:
        into.problems.extend(_validation_problems(file, exc, lines, model))
        return None
    except RecursionError:
        into.problems.append(Problem(file, None, "", "nested too deeply to be a journey"))
        return None
    if isinstance(parsed, Policy):
        into.policy, into.policy_file = parsed, file
        return None
    if isinstance(parsed, Catalogue):
        into.catalogue, into.catalogue_file = parsed, file
        return None
    if isinstance(parsed, SegmentFile):
        if not any(problem.file == file for problem in into.problems):
            into.segments = parsed.segments
        return None
    assert isinstance(parsed, Journey)
    into.journeys.append(parsed)
    into.sources[f"{parsed.id}@{parsed.version}"] = text
    into.origins.setdefault(f"{parsed.id}@{parsed.version}", file)
    return lines.get(("id",))


def load(paths: Sequence[Path]) -> Loaded:
    """Load every journey file (and policy.yaml) under the given files or folders."""
    loaded = Loaded()
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
            if not found:
                loaded.problems.append(Problem(str(path), None, "", "no journey files (*.yaml) in this folder"))
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            loaded.problems.append(Problem(str(path), None, "", "no such file or folder"))
    first_seen: dict[tuple[str, int], str] = {}
    for file in files:
        id_line = load_file(file, loaded)
        if id_line is None:
            continue
        journey = loaded.journeys[-1]
        key = (journey.id, journey.version)
        if key in first_seen:
            loaded.problems.append(Problem(
                str(file), id_line, "id",
                f"duplicate journey id {journey.id!r} version {journey.version} (also in {first_seen[key]})",
            ))  # fmt: skip
        first_seen.setdefault(key, str(file))
    loaded.problems.extend(_offer_problems(loaded))
    loaded.problems.extend(_segment_problems(loaded))
    return loaded


def _segment_problems(loaded: Loaded) -> list[Problem]:
    """A `{segment: NAME}` naming no segment of segments.yaml, and segments that name each other in a cycle."""
    known = sorted(loaded.segments_written)
    problems = []
    for used_in, loc, name in loaded.segment_uses:
        if name not in loaded.segments_written and used_in in loaded.lines:
            hint = difflib.get_close_matches(name, known, n=1)
            also = f" (did you mean {hint[0]!r}?)" if hint else "" if loaded.segments_file else (
                " (there is no segments.yaml: the segments go beside the journeys)")  # fmt: skip
            problems.append(Problem(used_in, _line_for(loc, loaded.lines[used_in]), dotted(loc),
                                    f"unknown segment {name!r}{also}"))  # fmt: skip
    file = loaded.segments_file or "segments.yaml"
    for found in cycles(loaded.segments_written):
        loc = ("segments", found[0])
        problems.append(Problem(file, _line_for(loc, loaded.lines.get(file, {})),
                                dotted(loc), f"segments name each other in a cycle: {' -> '.join(found)}"))  # fmt: skip
    return problems


def _offer_problems(loaded: Loaded) -> list[Problem]:
    """A decide step naming an offer the catalogue lacks, or tags no offer has."""
    if any(Path(problem.file).name in OFFER_NAMES for problem in loaded.problems):
        return []  # the catalogue could not be read: its own problems are listed, "unknown offer" would mislead
    known = {offer.id for offer in loaded.catalogue.offers}
    tags = {tag for offer in loaded.catalogue.offers for tag in offer.tags}
    catalogue = loaded.catalogue_file or "offers.yaml"
    none = "" if loaded.catalogue_file else " (there is no offers.yaml: the offer catalogue goes beside the journeys)"
    problems = []
    for journey in loaded.journeys:
        origin = loaded.origins.get(f"{journey.id}@{journey.version}", "")
        lines = loaded.lines.get(origin, {})
        for path, step in walk_steps(journey):
            if not isinstance(step, DecideStep):
                continue
            loc = (*(int(p) if p.isdigit() else p for p in path.split(".")), "decide", "offers")
            where = f"{path}.decide.offers"
            offers = step.decide.offers
            if isinstance(offers, tuple):
                for index, offer_id in enumerate(offers):
                    if offer_id not in known and offer_id not in offers[:index]:  # each unknown id once
                        hint = difflib.get_close_matches(offer_id, sorted(known), n=1)
                        also = f" (did you mean {hint[0]!r}?)" if hint else none
                        message = f"unknown offer {offer_id!r}: not in {catalogue}{also}"
                        problems.append(Problem(origin, _line_for((*loc, index), lines), where, message))
            else:
                for tag in offers.tags:
                    if tag not in tags:
                        problems.append(Problem(origin, _line_for((*loc, "tags"), lines), where,
                                                f"no offer in {catalogue} has the tag {tag!r}{none}"))  # fmt: skip
    return problems
