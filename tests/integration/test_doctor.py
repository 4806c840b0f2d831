"""`orchestrator doctor` against the real Kafka and Redis: all well, and topics that exist with other partitions."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.integration.conftest import ROOT, Stack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def doctor(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(stack.tmp), **stack.env,
           "ORCH_METRICS_PORT": str(free_port()), "ORCH_API_PORT": str(free_port())}  # fmt: skip
    done = subprocess.run([sys.executable, "-c", "from orchestrator.commands.cli import main; main()", "doctor", *args],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)  # fmt: skip
    assert "Traceback" not in done.stdout + done.stderr
    return done


def create(stack: Stack, topics: dict[str, int]) -> None:
    async def go() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=stack.bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(name, partitions, 1) for name, partitions in topics.items()])
        finally:
            await admin.close()

    asyncio.run(go())


def test_all_well_against_the_running_services(stack: Stack) -> None:
    done = doctor(stack, "--journeys", "journeys")
    assert done.returncode == 0, done.stdout
    found = {line.split()[1]: line for line in done.stdout.splitlines()}
    assert all(line.startswith("ok ") for line in found.values()), done.stdout
    assert list(found) == ["python", "settings", "journeys", "kafka", "topics", "transactions", "redis", "metrics",
                           "api"]  # fmt: skip
    assert found["kafka"].startswith(f"ok      kafka        {stack.bootstrap}: ")
    assert found["topics"].startswith("ok      topics       0 of 13 exist as expected, 13 will be created by the")
    assert found["transactions"] == "ok      transactions allowed (ORCH_PROCESSING_GUARANTEE=exactly_once)"
    assert found["redis"].startswith(f"ok      redis        {stack.env['ORCH_REDIS_URL']}: Redis ")


def test_topics_with_other_partition_counts(stack: Stack) -> None:
    app = stack.env["ORCH_APP_ID"]
    create(stack, {f"{app}.customers": 2, stack.topic("touchpoints"): 3, stack.topic("dlq"): 4})
    done = doctor(stack, "--journeys", "journeys", "--skip", "redis,metrics,api")
    assert done.returncode == 1
    topics = [line for line in done.stdout.splitlines() if line.split()[1] == "topics"]
    assert topics == [
        f"warning topics       {stack.topic('touchpoints')} has 3 partition(s), ORCH_TOPIC_PARTITIONS is 4: the worker "
        "uses it as it is",
        f"problem topics       {app}.customers has 2 partition(s) but ORCH_TOPIC_PARTITIONS=4: the worker's tables "
        "must be partitioned like it — fix: set ORCH_TOPIC_PARTITIONS=2, or a new ORCH_APP_ID (new topics)",
    ]


def test_the_right_partition_count_is_fine(stack: Stack) -> None:
    app = stack.env["ORCH_APP_ID"]
    create(stack, {f"{app}.customers": 2, stack.topic("touchpoints"): 2})
    stack.env["ORCH_TOPIC_PARTITIONS"] = "2"
    done = doctor(stack, "--journeys", "journeys", "--skip", "redis,metrics,api")
    assert done.returncode == 0, done.stdout
    [topics] = [line for line in done.stdout.splitlines() if line.split()[1] == "topics"]
    assert topics.startswith("ok      topics       2 of 13 exist as expected, 11 will be created by the worker (")
