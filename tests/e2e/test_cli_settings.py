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
        [sys.executable, "-c", "from orchestrator.commands.cli import main; main()", *args],
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



@pytest.mark.parametrize("command", [["worker"], ["api"]], ids=lambda command: command[0])
def test_production_refuses_the_development_secrets_in_one_line(command: list[str]) -> None:
    """Anyone who reads this repository knows them: coupon codes could be predicted and hashed emails guessed."""
    token = {"ORCH_API_TOKEN": "t" * 32}
    done = cli(*command, ORCH_ENV="production", ORCH_IDENTITY_SECRET="i" * 32, **token)
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith("refusing to start: ORCH_COUPON_SECRET at the development default with ORCH_ENV=production")
    both = cli(*command, ORCH_ENV="production", **token)
    assert both.returncode == 2
    assert both.stderr.splitlines()[0].startswith("refusing to start: ORCH_COUPON_SECRET and ORCH_IDENTITY_SECRET at")


def test_development_secrets_against_a_kafka_elsewhere_warn_at_start() -> None:
    done = cli("worker", "--journeys", "/nonexistent", ORCH_KAFKA_BOOTSTRAP_SERVERS="kafka.example.com:9092")
    assert done.stderr.splitlines()[0].startswith(
        "warning: ORCH_COUPON_SECRET and ORCH_IDENTITY_SECRET at the development default with Kafka at "
        "kafka.example.com:9092, not on this machine")  # fmt: skip
    assert done.returncode == 1  # then the journeys folder is missing
    here = cli("worker", "--journeys", "/nonexistent")
    assert not here.stderr.startswith("warning") and here.returncode == 1


def test_the_api_refuses_a_short_token() -> None:
    done = cli("api", ORCH_API_TOKEN="abc")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "refusing to start: ORCH_API_TOKEN has fewer than 32 characters: use a random one (`openssl rand -hex 32`)"]
