"""A bad ORCH_* value stops any command that reads the settings with one line naming the variable, exit 2:
never pydantic's dump, never the internal-error exit 70, and before touching Kafka or Redis."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
EXAMPLE = str(ROOT / "examples" / "events.jsonl")
NOWHERE = {"ORCH_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "ORCH_REDIS_URL": "redis://127.0.0.1:1/0"}


def cli(*args: str, **environ: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from orchestrator.cli import main; main()", *args],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": str(ROOT), **NOWHERE, **environ},
    )  # fmt: skip


COMMANDS = [
    ["validate"],
    ["simulate", "--events", EXAMPLE],
    ["report", "--events", EXAMPLE],
    ["affinities", "--events", EXAMPLE],
    ["worker"],
    ["send", EXAMPLE],
    ["tail", "--max", "1", "--timeout", "1"],
    ["api"],
    ["forget", "--customer", "c-1"],
    ["explain", "--customer", "c-1"],
    ["rebuild-serving"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda command: command[0])
def test_a_bad_setting_is_one_line_naming_the_variable_and_exit_2(command: list[str]) -> None:
    done = cli(*command, ORCH_MAX_EVENT_BYTES="abc")
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert done.stderr.splitlines() == [
        "ORCH_MAX_EVENT_BYTES=abc: not a whole number — fix: correct ORCH_MAX_EVENT_BYTES or unset it "
        "(default: 1048576)"
    ]
    assert done.stdout == ""


def test_every_bad_setting_is_named_on_the_one_line() -> None:
    done = cli("simulate", "--events", EXAMPLE, ORCH_COMMIT_INTERVAL="often", ORCH_API_PORT="70000")
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert "ORCH_COMMIT_INTERVAL=often: not a number" in line and "ORCH_API_PORT=70000: " in line
    assert "validation error" not in line and "pydantic" not in line

