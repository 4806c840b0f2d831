"""`orchestrator simulate` as a user runs it, this tree against an earlier git revision, side by side in one run.

    python -m bench.engine --against REV [--events 100000] [--repeat 3] [--customers ...] [--seed ...]

The engine bench's generated log (bench/engine.py) is written once as JSON lines. REV is exported (`git archive`)
into a temporary folder. Then `orchestrator simulate --journeys journeys --events LOG` runs from each tree in turn
(its own code and its own shipped journeys and policy, so an older revision is never asked to load a newer
contract), alternating which goes first, best of `--repeat`: wall clock and the child's CPU time (getrusage), the
whole command (start-up, reading and validating the log, the replay, writing the actions). The actions each
printed are counted: a note says when they differ (the journeys or the engine changed what is decided). The
ratio this tree / REV is what "faster than before" means on this machine today.
"""

from __future__ import annotations

import io
import os
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent


@dataclass(slots=True)
class Side:
    name: str
    tree: Path
    wall: float = float("inf")
    cpu: float = float("inf")
    actions: int = -1


def export(revision: str, into: Path) -> Path:
    """The files of `revision` (a commit, tag or branch of this repository) under `into`."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", revision], capture_output=True)
    if archive.returncode != 0:
        raise SystemExit(f"bench.engine: git archive {revision}: {archive.stderr.decode().strip()}")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    return into


# The command line's entry point in either layout (orchestrator/cli.py before the commands package).
MAIN = ("try:\n from orchestrator.commands.cli import main\n"
        "except ImportError:\n from orchestrator.cli import main\nmain()")


def simulate(side: Side, log: Path) -> None:
    """One run of the command from `side`'s tree; keeps the best wall and CPU time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", MAIN, "simulate", "--journeys",
         str(side.tree / "journeys"), "--events", str(log)],
        cwd=side.tree, env={**os.environ, "PYTHONPATH": str(side.tree)}, capture_output=True,
    )  # fmt: skip
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"bench.engine: simulate from {side.name} exited {done.returncode}: {done.stderr[-2000:]!r}")
    side.wall = min(side.wall, wall)
    side.cpu = min(side.cpu, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    side.actions = done.stdout.count(b"\n")


def compare(docs: list[dict[str, Any]], revision: str, repeat: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-revision-") as tmp:
        log = Path(tmp) / "log.jsonl"
        log.write_bytes(b"".join(orjson.dumps(doc) + b"\n" for doc in docs))
        sides = [Side("this tree", ROOT), Side(revision, export(revision, Path(tmp) / "revision"))]
        print(f"\n`orchestrator simulate` on {len(docs):,} events ({log.stat().st_size / 1e6:.0f} MB of JSON lines), "
              f"best of {repeat}, alternating:", flush=True)  # fmt: skip
        for round_ in range(repeat):
            for side in sides[:: 1 if round_ % 2 == 0 else -1]:
                simulate(side, log)
        for side in sides:
            print(f"  {side.name:>12}: {len(docs) / side.wall:,.0f} events/s ({side.wall:.2f} s wall, "
                  f"{side.cpu:.2f} s CPU), {side.actions:,} actions")  # fmt: skip
        mine, theirs = sides
        print(f"  this tree / {revision}: {theirs.wall / mine.wall:.2f}x by wall clock, "
              f"{theirs.cpu / mine.cpu:.2f}x by CPU")  # fmt: skip
        if mine.actions != theirs.actions:
            print(f"  note: the actions differ ({mine.actions:,} against {theirs.actions:,}): the journeys or what "
                  "the engine decides changed between the two")  # fmt: skip
