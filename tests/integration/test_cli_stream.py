"""`orchestrator send` and `orchestrator tail` as a user runs them, against a worker on the shipped journeys."""

from __future__ import annotations

import os
import subprocess
import sys

import orjson
import pytest

from tests.integration.conftest import ROOT, Stack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
GOLDEN = ROOT / "tests" / "golden" / "shipped-journeys.expected.jsonl"


def cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from orchestrator.commands.cli import main; main()", *args],
        capture_output=True, text=True, cwd=ROOT, env={**os.environ, **stack.env}, timeout=120,
    )  # fmt: skip


def test_send_then_tail_shows_what_simulate_shows(stack: Stack) -> None:
    stack.start_worker(journeys=ROOT / "journeys")
    sent = cli(stack, "send", "examples/events.jsonl")
    assert sent.returncode == 0 and "sent 22 record(s)" in sent.stderr
    expected = [orjson.loads(line) for line in GOLDEN.read_text().splitlines()]
    shown = cli(stack, "tail", "--from-beginning", "--max", str(len(expected)), "--timeout", "60")
    assert shown.returncode == 0, shown.stderr
    got = [orjson.loads(line) for line in shown.stdout.splitlines()]
    key = lambda action: action["action_id"]  # noqa: E731
    assert sorted(got, key=key) == sorted(expected, key=key)
    only_push = cli(stack, "tail", "push", "--from-beginning", "--timeout", "3")
    assert {orjson.loads(line)["channel"] for line in only_push.stdout.splitlines()} == {"push"}
