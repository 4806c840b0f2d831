"""`orchestrator doctor` as ops run it, each check failing on its own: no Kafka or Redis needed (the services it
talks to are closed ports or silent sockets of the test's own)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

ROOT = Path(__file__).parents[2]
ALL_BUT = {check: ",".join(c for c in ("kafka", "redis", "metrics", "api") if c != check)
           for check in ("kafka", "redis", "metrics", "api", "none")}  # fmt: skip


def closed_port() -> int:
    """A port nothing listens on (the kernel just handed it out and it was closed again)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def silent() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never answers: a hung service."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield int(sock.getsockname()[1])


def doctor(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    process = subprocess.run(
        [sys.executable, "-c", "from orchestrator.commands.cli import main; main()", "doctor", *args],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": str(ROOT), "ORCH_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{closed_port()}",
             "ORCH_REDIS_URL": f"redis://127.0.0.1:{closed_port()}/0", **env},
    )  # fmt: skip
    assert "Traceback" not in process.stderr + process.stdout
    return process


def lines(done: subprocess.CompletedProcess[str], status: str, name: str) -> list[str]:
    return [line for line in done.stdout.splitlines() if line.split()[:2] == [status, name]]


def test_help() -> None:
    done = doctor("--help")
    assert done.returncode == 0 and "Usage: orchestrator doctor" in done.stdout and "--skip" in done.stdout


def test_all_well_without_services_exits_0() -> None:
    done = doctor("--skip", ALL_BUT["none"])
    assert done.returncode == 0, done.stdout
    assert done.stdout.splitlines()[0].startswith(f"ok      python       {sys.version_info[0]}.{sys.version_info[1]}.")
    assert lines(done, "ok", "settings") == [
        "ok      settings     2 ORCH_* variable(s) set, all valid; ORCH_ENV=development (development secrets allowed)"
    ]
    assert lines(done, "ok", "journeys")[0].startswith("ok      journeys     4 journey(s) valid in journeys (")


def test_a_bad_setting_is_one_line_naming_the_variable() -> None:
    done = doctor("--skip", ALL_BUT["none"], ORCH_COMMIT_INTERVAL="abc")
    assert done.returncode == 1
    assert lines(done, "problem", "settings") == [
        "problem settings     ORCH_COMMIT_INTERVAL=abc: not a number — fix: correct ORCH_COMMIT_INTERVAL or unset it "
        "(default: 0.25)"
    ]
    assert lines(done, "ok", "journeys")  # the other checks still ran


def test_a_bad_setting_that_a_check_needs_skips_that_check() -> None:
    done = doctor("--skip", "kafka,redis,metrics", ORCH_API_PORT="70000")
    assert done.returncode == 1
    assert lines(done, "problem", "settings") == [
        "problem settings     ORCH_API_PORT=70000: input should be less than or equal to 65535 — fix: correct "
        "ORCH_API_PORT or unset it (default: 8080)"
    ]
    assert lines(done, "warning", "api") == [
        "warning api          not checked: ORCH_API_PORT is not valid (see settings)"
    ]


def test_a_bad_journey_names_the_file_and_line(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "journeys", tmp_path / "j")
    broken = tmp_path / "j" / "abandoned-cart.yaml"
    broken.write_text(broken.read_text().replace("wait: 30m", "wait: 30x"))
    done = doctor("--journeys", str(tmp_path / "j"), "--skip", ALL_BUT["none"])
    assert done.returncode == 1
    [line] = lines(done, "problem", "journeys")
    assert line.startswith(f"problem journeys     {broken}:14: steps.0.wait: bad duration '30x'")
    assert line.endswith(f"— fix: run `orchestrator validate {tmp_path / 'j'}` for every problem")


def test_kafka_down_is_one_line_with_the_address_in_a_few_seconds() -> None:
    port = closed_port()
    started = time.monotonic()
    done = doctor("--skip", ALL_BUT["kafka"], ORCH_KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{port}")
    assert time.monotonic() - started < 10
    assert done.returncode == 1
    assert lines(done, "problem", "kafka") == [
        f"problem kafka        cannot reach Kafka at 127.0.0.1:{port}: no broker answered (connection refused, or "
        "unknown host); topics and transactions not checked — fix: start Kafka, or set ORCH_KAFKA_BOOTSTRAP_SERVERS "
        "to its HOST:PORT"
    ]
    assert not lines(done, "ok", "topics") and not lines(done, "ok", "transactions")
    assert done.stderr == ""  # aiokafka's own connection errors are not shown


def test_redis_down_is_one_line_with_the_address_and_no_password() -> None:
    port = closed_port()
    done = doctor("--skip", ALL_BUT["redis"], ORCH_REDIS_URL=f"redis://:s3cret@127.0.0.1:{port}/0")
    assert done.returncode == 1
    [line] = lines(done, "problem", "redis")
    assert line.startswith(f"problem redis        cannot reach Redis at redis://:***@127.0.0.1:{port}/0: ")
    assert line.endswith("— fix: start Redis, or set ORCH_REDIS_URL (redis://HOST:PORT/DB)")
    assert "s3cret" not in done.stdout


def test_services_that_never_answer_take_the_timeout_not_forever(silent: int) -> None:
    started = time.monotonic()
    done = doctor("--skip", "metrics,api", ORCH_KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{silent}",
                  ORCH_REDIS_URL=f"redis://127.0.0.1:{silent}/0")  # fmt: skip
    assert time.monotonic() - started < 12  # 3 s each, asked at the same time
    assert done.returncode == 1
    assert lines(done, "problem", "kafka")[0].startswith(
        f"problem kafka        cannot reach Kafka at 127.0.0.1:{silent}: no answer within 3 s"
    )
    [redis] = lines(done, "problem", "redis")
    assert redis.startswith(f"problem redis        cannot reach Redis at redis://127.0.0.1:{silent}/0: ")


def test_an_unknown_redis_scheme_is_a_settings_problem() -> None:
    done = doctor("--skip", ALL_BUT["redis"], ORCH_REDIS_URL="memcached://127.0.0.1:11211")
    assert done.returncode == 1
    [line] = lines(done, "problem", "settings")
    assert line.startswith("problem settings     ORCH_REDIS_URL=memcached://127.0.0.1:11211: Redis URL must specify")
    assert lines(done, "warning", "redis") == [
        "warning redis        not checked: ORCH_REDIS_URL is not valid (see settings)"
    ]


def test_a_port_in_use_names_it_and_the_setting() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        done = doctor("--skip", ALL_BUT["metrics"], ORCH_METRICS_PORT=str(port))
    assert done.returncode == 1
    assert lines(done, "problem", "metrics") == [
        f"problem metrics      127.0.0.1:{port} is in use — fix: stop the process listening on port {port}, or set "
        "ORCH_METRICS_PORT to a free port"
    ]


def test_production_wants_its_own_secrets() -> None:
    done = doctor("--skip", ALL_BUT["none"], ORCH_ENV="production")
    assert done.returncode == 1
    found = lines(done, "problem", "settings")
    assert [line.split(" — ")[0] for line in found] == [
        "problem settings     ORCH_COUPON_SECRET is the development default in production: coupon codes can be guessed "
        "(the worker and the API refuse to start)",
        "problem settings     ORCH_IDENTITY_SECRET is the development default in production: hashed emails and "
        "phones can be guessed (the worker and the API refuse to start)",
    ]
    assert lines(done, "warning", "settings")[0].startswith("warning settings     ORCH_API_TOKEN is not set")
    own = doctor("--skip", ALL_BUT["none"], ORCH_ENV="production", ORCH_COUPON_SECRET="c" * 32,
                 ORCH_IDENTITY_SECRET="i" * 32, ORCH_API_TOKEN="t" * 32)  # fmt: skip
    assert own.returncode == 0, own.stdout
    assert "ORCH_ENV=production (own secrets)" in lines(own, "ok", "settings")[0]
    short = doctor("--skip", ALL_BUT["none"], ORCH_API_TOKEN="abc")
    assert short.returncode == 1
    assert lines(short, "problem", "settings") == [
        "problem settings     ORCH_API_TOKEN has 3 characters, fewer than 32: `orchestrator api` refuses to start — "
        "fix: set ORCH_API_TOKEN to the output of `openssl rand -hex 32` where the API runs"
    ]


def test_an_unknown_variable_is_a_warning_with_a_guess() -> None:
    done = doctor("--skip", ALL_BUT["none"], ORCH_COMIT_INTERVAL="1", ORCH_DOCTOR_SKIP="api", ORCH_DEBUG="1")
    assert done.returncode == 0  # warnings are allowed
    assert lines(done, "warning", "settings") == [
        "warning settings     ORCH_COMIT_INTERVAL is not a setting, so it is ignored (did you mean "
        "ORCH_COMMIT_INTERVAL?) — fix: rename it to ORCH_COMMIT_INTERVAL"
    ]  # ORCH_DOCTOR_SKIP (click's variable for --skip) and ORCH_DEBUG are known


def test_json_for_machines() -> None:
    done = doctor("--json", "--skip", ALL_BUT["kafka"])
    assert done.returncode == 1
    report = orjson.loads(done.stdout)
    assert report["ok"] is False
    kafka = next(check for check in report["checks"] if check["name"] == "kafka")
    assert kafka["status"] == "problem" and kafka["fix"].startswith("start Kafka")
    assert {check["name"] for check in report["checks"]} == {"python", "settings", "journeys", "kafka"}


def test_skip_names_are_checked() -> None:
    done = doctor("--skip", "kafka,radis")
    assert done.returncode == 2 and "radis: choose among journeys, kafka, redis, metrics, api" in done.stderr
