"""`orchestrator worker` refuses a bad journey folder before it touches Kafka: exit 1, every problem as
`FILE:LINE: ...` on stderr, never a traceback. Ops deploy a folder; one bad file must stop the start, with words.

Kafka and Redis point at a closed port: a worker that connected before validating would fail differently (exit 70
and a connection error), which the control case shows.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
JOURNEYS = ROOT / "tests" / "integration" / "journeys"
NOWHERE = {"ORCH_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "ORCH_REDIS_URL": "redis://127.0.0.1:1/0"}
STARTED = "journey(s), Kafka"  # the line the worker prints once the journeys are valid, before connecting
ALIAS_BOMB = (
    "".join(
        f"{name}: &{name} [{', '.join([f'*{prev}' if prev else 'x'] * 8)}]\n"
        for prev, name in [("", "a"), ("a", "b"), ("b", "c"), ("c", "d"), ("d", "e"), ("e", "f")]
    )
    + "id: bomb\ntrigger: {event: a}\nsteps: [*f]\n"
)


def worker(folder: Path, tmp: Path) -> subprocess.CompletedProcess[str]:
    process = subprocess.run(
        [sys.executable, "-c", "from orchestrator.commands.cli import main; main()", "worker", "--journeys",
         str(folder)],
        capture_output=True, text=True, cwd=tmp, timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp), "ORCH_DATA_DIR": str(tmp / "data"), **NOWHERE},
    )  # fmt: skip
    assert "Traceback" not in process.stderr + process.stdout
    return process


def folder_with(tmp: Path, name: str, content: str | bytes) -> Path:
    """The integration journeys (valid) plus one bad file: one bad file is enough to refuse the whole folder."""
    folder = tmp / "journeys"
    shutil.copytree(JOURNEYS, folder)
    path = folder / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return folder


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("syntax.yaml", "id: broken\ntrigger: {event: cart_add\nsteps:\n  - wait: 4s\n",
         [":3: not valid YAML: expected ',' or '}', but got ':'"]),
        ("types.yaml", "id: types\npriority: high\ntrigger: {event: cart_add}\nsteps:\n  - wait: 30\n"
                       "  - send: {channel: email, template: [x]}\n",
         [":2: priority: must be a whole number (got text 'high')", ":5: steps.0.wait: bad duration 30",
          ":6: steps.1.send.template: must be text (got a list)"]),
        ("shape.yaml", "- id: a\n- id: b\n", [":1: a journey must be a YAML mapping, got list"]),
        ("whole.yaml", "id: whole\ntrigger: cart_add\nsteps: 5\n", [":2: trigger: ", ":3: steps: "]),
        ("code.yaml", "id: !!python/object/apply:os.system [echo pwned]\ntrigger: {event: a}\nsteps: [exit]\n",
         [":1: not valid YAML: could not determine a constructor"]),
        ("bomb.yaml", ALIAS_BOMB, [":6: steps.0: a step must be a mapping"]),  # the line of the anchor `*f` names
        ("policy.yaml", "default_timezone: Mars/Olympus_Mons\nmax_per_day: {email: -1}\n",
         [":1: default_timezone: ", ":2: max_per_day.email: "]),
    ],
)  # fmt: skip
def test_a_bad_file_stops_the_worker_with_file_and_line(
    tmp_path: Path, name: str, content: str, expected: list[str]
) -> None:
    folder = folder_with(tmp_path, name, content)
    done = worker(folder, tmp_path)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.splitlines()
    bad = str(folder / name)
    for message in expected:
        assert any(line.startswith(bad + message) for line in lines), (message, lines)
    problems, summary = lines[:-1], lines[-1]
    assert problems and all(re.match(rf"{re.escape(bad)}:\d+: \S", line) for line in problems), lines
    assert summary == f"{len(problems)} problem(s): fix them and run `orchestrator validate` again"
    assert STARTED not in done.stderr and "Kafka" not in done.stderr and not done.stdout  # it never got that far


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("deep.yaml", "id: deep\ntrigger: {event: a}\nsteps: " + "[" * 5000 + "]" * 5000 + "\n",
         "not valid YAML: nested too deeply"),
        ("binary.yaml", b"id: x\n\xff\xfe\x00garbage", "cannot read the file: 'utf-8' codec can't decode byte 0xff"),
        ("empty.yaml", "", "the file is empty: a journey needs id, trigger and steps"),
    ],
)  # fmt: skip
def test_a_file_that_is_not_a_journey_at_all_stops_the_worker(
    tmp_path: Path, name: str, content: str | bytes, message: str
) -> None:
    """Problems of the whole file carry its name, and a line where there is one to point at."""
    folder = folder_with(tmp_path, name, content)
    done = worker(folder, tmp_path)
    assert done.returncode == 1, done.stderr
    assert re.match(rf"{re.escape(str(folder / name))}(:\d+)?: {re.escape(message)}", done.stderr), done.stderr
    assert STARTED not in done.stderr


def test_a_too_deeply_nested_file_is_reported_with_a_line(tmp_path: Path) -> None:
    content = "id: deep\ntrigger: {event: a}\nsteps:\n  - if: " + "{not: " * 5000 + "{}" + "}" * 5000 + "\n"
    folder = folder_with(tmp_path, "deep.yaml", content)
    done = worker(folder, tmp_path)
    assert done.returncode == 1
    assert re.match(rf"{re.escape(str(folder / 'deep.yaml'))}:\d+: ", done.stderr), done.stderr


def test_control_valid_journeys_pass_validation_then_need_kafka(tmp_path: Path) -> None:
    """Without the bad file the same start gets past validation and fails on the closed Kafka port instead."""
    folder = folder_with(tmp_path, "extra.yaml", "id: extra\ntrigger: {event: a}\nsteps: [exit]\n")
    done = worker(folder, tmp_path)
    assert done.returncode == 70 and STARTED in done.stderr and "127.0.0.1:1" in done.stderr, done.stderr
