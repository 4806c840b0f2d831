"""`simulate --deploy TIME=DIR`: a deploy replayed in the middle of the log, as the worker lives it.

Runs in flight at TIME finish on the version they entered; entries from TIME on take DIR's journeys. Each deploy
gets an engine whose journeys are its folder's and whose retired versions are every earlier folder's that it does
not carry; the simulator switches to it at TIME. As the worker refuses a journey changed under the same version
(its archive, `stream/admin.py`), a folder that changes a journey without bumping `version` is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from orchestrator.commands.common import EXIT_USAGE, err
from orchestrator.contract.journeys import Journey
from orchestrator.contract.loader import Loaded, Problem, load
from orchestrator.engine import Engine
from orchestrator.timefmt import format_ms, parse_rfc3339, to_ms

EXAMPLE = "2026-03-02T12:00:00Z=journeys-v2"


@dataclass(frozen=True, slots=True)
class Deploy:
    given: str  # TIME=DIR, as written on the command line
    at: int  # ms
    folder: Path


def parse_deploy(value: str) -> Deploy:
    """`TIME=DIR`; ValueError with the sentence to show."""
    time, sep, folder = value.partition("=")
    if not sep or not time.strip() or not folder.strip():
        raise ValueError(f"write TIME=DIR, e.g. {EXAMPLE}")
    return Deploy(value, to_ms(parse_rfc3339(time.strip())), Path(folder))


def parse_deploys(values: Sequence[str]) -> tuple[Deploy, ...]:
    """Every --deploy value, in time order; one line and exit 2 for the first that cannot be used."""
    deploys: list[Deploy] = []
    for value in values:
        try:
            deploy = parse_deploy(value)
        except ValueError as exc:
            err(f"--deploy {value}: {exc}")
            raise SystemExit(EXIT_USAGE) from None
        same = next((other for other in deploys if other.at == deploy.at), None)
        if same is not None:
            err(f"--deploy {value}: another deploy ({same.given}) is at the same time {format_ms(deploy.at)}")
            raise SystemExit(EXIT_USAGE)
        deploys.append(deploy)
    return tuple(sorted(deploys, key=lambda deploy: deploy.at))


def version_problems(loaded: Loaded, earlier: Sequence[Loaded]) -> list[Problem]:
    """A journey whose (id, version) an earlier folder has with other content: runs in flight would change journey
    mid-way, so a deploy must bump the version (the worker refuses to start on it)."""
    before: dict[tuple[str, int], tuple[Journey, str]] = {}
    for folder in earlier:
        for journey in folder.journeys:
            origin = folder.origins[f"{journey.id}@{journey.version}"]
            before.setdefault((journey.id, journey.version), (journey, origin))
    problems = []
    for journey in loaded.journeys:
        known = before.get((journey.id, journey.version))
        if known is None or known[0] == journey:
            continue
        file = loaded.origins[f"{journey.id}@{journey.version}"]
        lines = loaded.lines.get(file, {})
        line = lines.get(("version",), lines.get(("id",)))  # where `version:` is, or goes (the journey's top)
        problems.append(Problem(
            file, line, "version",
            f"journey {journey.id!r} version {journey.version} differs from the one deployed before under that "
            f"version ({known[1]}): give it `version: {journey.version + 1}` so runs in flight finish on theirs",
        ))  # fmt: skip
    return problems


def load_deploys(first: Loaded, deploys: Sequence[Deploy]) -> list[tuple[Deploy, Loaded]]:
    """Each deploy's folder loaded and validated like --journeys; every problem printed (file and line) and exit 2."""
    loaded: list[tuple[Deploy, Loaded]] = []
    problems: list[Problem] = []
    for deploy in deploys:
        folder = load([deploy.folder])
        found = folder.problems or version_problems(folder, [first, *(other for _, other in loaded)])
        problems.extend(found)
        loaded.append((deploy, folder))
    for problem in problems:
        err(str(problem))
    if problems:
        raise SystemExit(EXIT_USAGE)
    return loaded


def schedule(
    first: Loaded, deployed: Sequence[tuple[Deploy, Loaded]], make: Callable[[Loaded, list[Journey]], Engine]
) -> list[tuple[int, Engine]]:
    """(time, engine) per deploy: `make(folder, retired)` with retired = the earlier versions the folder lacks."""
    engines: list[tuple[int, Engine]] = []
    earlier: dict[tuple[str, int], Journey] = {(j.id, j.version): j for j in first.journeys}
    for deploy, folder in deployed:
        current = {(j.id, j.version) for j in folder.journeys}
        engines.append((deploy.at, make(folder, [j for key, j in earlier.items() if key not in current])))
        for journey in folder.journeys:
            earlier.setdefault((journey.id, journey.version), journey)
    return engines
