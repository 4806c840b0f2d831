"""The bounded chaos run CI does on every change: 3 worker kills, a broker restart, a broker pause, a Redis
restart, about 2 minutes of traffic; exactly-once against `simulate`. The long run: `python -m tests.chaos.harness`."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.chaos.harness import chaos

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


def test_exactly_once_under_faults(services: dict[str, str], tmp_path: Path) -> None:
    report = asyncio.run(chaos(services, tmp_path, seed=20261126, people=1000, slots=60, kills=3, broker_restarts=1,
                               pauses=1, redis_restarts=1))  # fmt: skip
    print(report.summary())
    assert report.faults["kill"] >= 3 and report.faults["broker-restart"] == 1
    assert report.late_anonymous == 0, ("an outage outlasted the log's sign-in gap", report.summary(), report.examples)
    assert report.expected_actions > 500, report.summary()
    assert (report.duplicates, report.lost, report.unexpected) == (0, 0, 0), (report.summary(), report.examples)
    assert report.dlq_records == report.garbage_sent, report.summary()
    assert report.state_mismatches == 0, (report.summary(), report.examples)
    assert report.kpis_compared > 100 and report.kpi_mismatches == report.redis_kpi_mismatches == 0, (
        report.summary(), report.examples)  # fmt: skip
