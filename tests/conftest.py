"""Fixtures shared by the integration and chaos tests."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="session")
def services() -> Iterator[dict[str, str]]:
    """Start Kafka and Redis with the project's own script; stop them after if this session started them."""
    script = str(ROOT / "scripts" / "services")
    was_up = subprocess.run([script, "status"], capture_output=True).returncode == 0
    if not was_up:
        subprocess.run([script, "up"], check=True, timeout=600)
    yield {"ORCH_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:" + os.environ.get("ORCH_KAFKA_PORT", "9092"),
           "ORCH_REDIS_URL": "redis://127.0.0.1:" + os.environ.get("ORCH_REDIS_PORT", "6379") + "/0"}  # fmt: skip
    if not was_up:
        subprocess.run([script, "down"], check=False, timeout=120)


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[str]:
    """The URL of a three-node Redis Cluster (`scripts/services cluster up`); stopped after if this session
    started it."""
    script = str(ROOT / "scripts" / "services")
    was_up = subprocess.run([script, "cluster", "status"], capture_output=True).returncode == 0
    if not was_up:
        subprocess.run([script, "cluster", "up"], check=True, timeout=300)
    env = subprocess.run([script, "cluster", "env"], capture_output=True, text=True, check=True).stdout
    yield env.strip().removeprefix("export ORCH_REDIS_CLUSTER_URL=")
    if not was_up:
        subprocess.run([script, "cluster", "down"], check=False, timeout=120)
