"""The doctor's pure parts: lines, the Python check, what Redis's INFO means, the names it knows."""

import pytest

from orchestrator.commands.cli import cli
from orchestrator.commands.doctor import Check, Report, check_python, option_variables, skipped
from orchestrator.commands.doctor_services import _redis_checks, masked


def test_lines_are_aligned_and_problems_say_how_to_fix() -> None:
    assert Check("python", "ok", "3.11.7", "never shown").line() == "ok      python       3.11.7"
    assert Check("kafka", "problem", "down", "start it").line() == "problem kafka        down — fix: start it"
    assert Report([Check("a", "ok", ""), Check("b", "warning", "")]).ok
    assert not Report([Check("a", "ok", ""), Check("b", "problem", "")]).ok


def test_python_older_than_3_11_is_a_problem() -> None:
    assert check_python((3, 11, 0)).status == "ok"
    old = check_python((3, 10, 12))
    assert old.status == "problem" and old.detail == "3.10.12 is too old: the orchestrator needs 3.11+"


def test_redis_passwords_are_never_printed() -> None:
    assert masked("redis://:pw@host:6379/0") == "redis://:***@host:6379/0"
    assert masked("rediss://user:pw@host/1") == "rediss://user:***@host/1"
    assert masked("redis://host:6379/0") == "redis://host:6379/0"


@pytest.mark.parametrize(
    ("info", "status", "start"),
    [
        ({"redis_version": "7.2.4"}, "ok", "redis://r: Redis 7.2.4 (standalone, master)"),
        ({"redis_version": "3.2.12"}, "problem", "Redis 3.2.12 at redis://r is too old"),
        ({"redis_version": "7.2.4", "role": "slave"}, "problem", "Redis at redis://r is a read-only slave"),
        ({"redis_version": "7.2.4", "maxmemory_policy": "allkeys-lru"}, "warning", "maxmemory-policy is allkeys-lru"),
        ({"redis_version": "7.2.4", "redis_mode": "cluster"}, "warning", "Redis at redis://r is a cluster node"),
    ],
)
def test_what_redis_info_means(info: dict[str, str], status: str, start: str) -> None:
    found = _redis_checks("redis://r", info)
    assert any(check.status == status and check.detail.startswith(start) for check in found), found
    assert (found[0].status == "ok") == all(check.status != "problem" for check in found)


def test_skip_takes_commas_and_repeats_and_refuses_the_unknown() -> None:
    assert skipped(["kafka,redis", "api", " "]) == {"kafka", "redis", "api"}
    with pytest.raises(ValueError, match="python: choose among"):
        skipped(["python"])


def test_the_cli_s_own_variables_are_known() -> None:
    known = option_variables(cli)
    assert {"ORCH_DOCTOR_JOURNEYS_DIR", "ORCH_DOCTOR_SKIP", "ORCH_TAIL_TIMEOUT", "ORCH_FORGET_CUSTOMER_ID"} <= known
