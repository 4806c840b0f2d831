"""`simulate` as a user runs it: the worker's size limit on input lines, and `--deploy TIME=DIR`, a deploy replayed
in the middle of the log (runs in flight finish on their version, later entries take the new folder's)."""

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "examples" / "events.jsonl"
DEPLOY_AT = "2026-03-02T12:00:00Z"
V1 = """id: nudge
version: 1
trigger: {event: cart_add}
steps:
  - wait: 8h
  - send: {channel: email, template: nudge-v1}
"""
V2 = V1.replace("version: 1", "version: 2").replace("wait: 8h", "wait: 1h").replace("nudge-v1", "nudge-v2")
V3 = V1.replace("version: 1", "version: 3").replace("wait: 8h", "wait: 30m").replace("nudge-v1", "nudge-v3")
OPEN = "consent_required: []\n"


def cli(*args: str, cwd: Path, **environ: str) -> subprocess.CompletedProcess[str]:
    process = subprocess.run(
        [sys.executable, "-c", "from orchestrator.commands.cli import main; main()", *args],
        capture_output=True, text=True, cwd=cwd, timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": str(cwd), **environ},
    )  # fmt: skip
    assert "Traceback" not in process.stderr + process.stdout
    return process


def folder(tmp: Path, name: str, journey: str, policy: str = OPEN) -> str:
    path = tmp / name
    path.mkdir()
    (path / "policy.yaml").write_text(policy)
    (path / "nudge.yaml").write_text(journey)
    return name


def cart(event_id: str, customer: str, at: str) -> bytes:
    return orjson.dumps({"event_id": event_id, "type": "cart_add", "occurred_at": at, "channel": "web",
                         "customer_id": customer, "properties": {"sku": "S", "price": 1}})  # fmt: skip


def log(tmp: Path, *lines: bytes) -> str:
    (tmp / "events.jsonl").write_bytes(b"".join(line + b"\n" for line in lines))
    return "events.jsonl"


def sent(done: subprocess.CompletedProcess[str]) -> list[tuple[str, str, str, int]]:
    assert done.returncode == 0, done.stderr
    actions = [orjson.loads(line) for line in done.stdout.splitlines()]
    return sorted((a["customer_id"], a["at"], a["template"], a["journey_version"]) for a in actions)


def test_a_line_over_the_size_limit_is_skipped_as_the_worker_dead_letters_it(tmp_path: Path) -> None:
    lines = EXAMPLE.read_bytes().splitlines()
    big = {"event_id": "big", "type": "page_view", "occurred_at": "2026-03-02T10:00:00Z", "channel": "web",
           "customer_id": "c-big", "properties": {"note": "x" * 2000}}  # fmt: skip
    events = log(tmp_path, *lines[:2], orjson.dumps(big), *lines[2:])
    done = cli("simulate", "--journeys", str(ROOT / "journeys"), "--events", events, cwd=tmp_path,
               ORCH_MAX_EVENT_BYTES="2048")  # fmt: skip
    assert done.returncode == 0, done.stderr
    size = len(orjson.dumps(big))
    assert f"events.jsonl:3: skipped: too large: {size:,} bytes, the limit is 2,048 (ORCH_MAX_EVENT_BYTES)" \
        in done.stderr.splitlines()  # fmt: skip
    assert "1 bad line(s) skipped" in done.stderr
    default = cli("simulate", "--journeys", str(ROOT / "journeys"), "--events", events, cwd=tmp_path)
    assert "0 bad line(s) skipped" in default.stderr and "for 9 customers" in default.stderr  # 1 MiB by default


def test_runs_in_flight_at_a_deploy_finish_on_their_version_later_entries_take_the_new_one(tmp_path: Path) -> None:
    events = log(tmp_path, cart("e1", "c-early", "2026-03-02T10:00:00Z"), cart("e2", "c-late", "2026-03-02T13:00:00Z"))
    v1, v2 = folder(tmp_path, "v1", V1), folder(tmp_path, "v2", V2)
    done = cli("simulate", "--journeys", v1, "--events", events, "--deploy", f"{DEPLOY_AT}={v2}", cwd=tmp_path)
    assert sent(done) == [("c-early", "2026-03-02T18:00:00Z", "nudge-v1", 1),
                          ("c-late", "2026-03-02T14:00:00Z", "nudge-v2", 2)]  # fmt: skip
    assert "1 deploy(s)" in done.stderr
    without = cli("simulate", "--journeys", v1, "--events", events, cwd=tmp_path)
    assert [version for *_, version in sent(without)] == [1, 1]


def test_deploys_chain_and_every_earlier_version_still_finishes(tmp_path: Path) -> None:
    events = log(tmp_path, cart("e1", "c-1", "2026-03-02T10:00:00Z"), cart("e2", "c-2", "2026-03-02T13:00:00Z"),
                 cart("e3", "c-3", "2026-03-02T13:40:00Z"))  # fmt: skip
    v1, v2, v3 = folder(tmp_path, "v1", V1), folder(tmp_path, "v2", V2), folder(tmp_path, "v3", V3)
    # given out of order: they run in time order
    done = cli("simulate", "--journeys", v1, "--events", events, "--deploy", f"2026-03-02T13:30:00Z={v3}",
               "--deploy", f"{DEPLOY_AT}={v2}", cwd=tmp_path)  # fmt: skip
    assert sent(done) == [("c-1", "2026-03-02T18:00:00Z", "nudge-v1", 1),
                          ("c-2", "2026-03-02T14:00:00Z", "nudge-v2", 2),
                          ("c-3", "2026-03-02T14:10:00Z", "nudge-v3", 3)]  # fmt: skip


def test_from_the_deploy_on_the_new_folders_policy_decides_every_send(tmp_path: Path) -> None:
    """A timer due exactly at the deploy runs on the new engine: the v1 run finishes on v1, under v2's policy."""
    events = log(tmp_path, cart("e1", "c-early", "2026-03-02T04:00:00Z"))  # its send is due at 12:00
    v1, v2 = folder(tmp_path, "v1", V1), folder(tmp_path, "v2", V2, "consent_required: [email]\n")
    audit = tmp_path / "audit.jsonl"
    done = cli("simulate", "--journeys", v1, "--events", events, "--deploy", f"{DEPLOY_AT}={v2}",
               "--audit", str(audit), cwd=tmp_path)  # fmt: skip
    assert sent(done) == []
    records = [orjson.loads(line) for line in audit.read_text().splitlines()]
    (suppressed,) = [r for r in records if r["kind"] == "suppressed"]
    assert (suppressed["at"], suppressed["version"], suppressed["reason"]) == (DEPLOY_AT, 1, "no_consent")
    a_second_before = cli("simulate", "--journeys", v1, "--events", events, "--deploy",
                          f"2026-03-02T12:00:01Z={v2}", cwd=tmp_path)  # fmt: skip
    assert sent(a_second_before) == [("c-early", DEPLOY_AT, "nudge-v1", 1)]


def test_deploy_combines_with_compare(tmp_path: Path) -> None:
    """--compare diffs from the replay with its deploy to OTHER_DIR's replay: here, v2 from the start."""
    events = log(tmp_path, cart("e1", "c-early", "2026-03-02T10:00:00Z"), cart("e2", "c-late", "2026-03-02T13:00:00Z"))
    v1, v2 = folder(tmp_path, "v1", V1), folder(tmp_path, "v2", V2)
    done = cli("simulate", "--journeys", v1, "--events", events, "--deploy", f"{DEPLOY_AT}={v2}", "--compare", v2,
               cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    assert "customer c-early" in out and "customer c-late" not in out  # c-late entered v2 in both replays
    assert "  + added    2026-03-02T11:00:00Z  email nudge-v2  nudge > steps.1" in out
    assert "  - removed  2026-03-02T18:00:00Z  email nudge-v1  nudge > steps.1" in out
    assert "total: 1 added, 1 removed, 0 moved, 1 unchanged" in out


@pytest.mark.parametrize(
    ("deploy", "message"),
    [
        ("soon=v2", "--deploy soon=v2: not an RFC 3339 time: 'soon'"),
        ("2026-03-02T12:00:00=v2", "--deploy 2026-03-02T12:00:00=v2: time '2026-03-02T12:00:00' has no UTC offset"),
        ("v2", "--deploy v2: write TIME=DIR, e.g. 2026-03-02T12:00:00Z=journeys-v2"),
        (f"{DEPLOY_AT}=nowhere", "nowhere: no such file or folder"),
        (f"{DEPLOY_AT}=broken", "broken/nudge.yaml:5: steps.0.wait: bad duration '1x'"),
        (f"{DEPLOY_AT}=edited", "edited/nudge.yaml:2: version: journey 'nudge' version 1 differs from the one deployed "
                                "before under that version (v1/nudge.yaml): give it `version: 2`"),
        # without a `version:` line it still says `version:` (where it goes: the journey's id line)
        (f"{DEPLOY_AT}=unversioned", "unversioned/nudge.yaml:1: version: journey 'nudge' version 1 differs"),
    ],
)  # fmt: skip
def test_a_bad_deploy_is_one_line_naming_the_place_and_exit_2(tmp_path: Path, deploy: str, message: str) -> None:
    events = log(tmp_path, cart("e1", "c-early", "2026-03-02T10:00:00Z"))
    v1 = folder(tmp_path, "v1", V1)
    folder(tmp_path, "v2", V2)
    folder(tmp_path, "broken", V2.replace("wait: 1h", "wait: 1x"))
    folder(tmp_path, "edited", V1.replace("wait: 8h", "wait: 9h"))  # the same version, other content
    folder(tmp_path, "unversioned", V1.replace("version: 1\n", "").replace("wait: 8h", "wait: 9h"))
    done = cli("simulate", "--journeys", v1, "--events", events, "--deploy", deploy, cwd=tmp_path)
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith(message), line
    assert done.stdout == ""


def test_two_deploys_at_one_time_are_refused(tmp_path: Path) -> None:
    events = log(tmp_path, cart("e1", "c-early", "2026-03-02T10:00:00Z"))
    v1, v2 = folder(tmp_path, "v1", V1), folder(tmp_path, "v2", V2)
    done = cli("simulate", "--journeys", v1, "--events", events, "--deploy", f"{DEPLOY_AT}={v2}",
               "--deploy", f"2026-03-02T13:00:00+01:00={v1}", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"--deploy 2026-03-02T13:00:00+01:00={v1}: another deploy ({DEPLOY_AT}={v2}) is at the same time {DEPLOY_AT}"
    ]


def test_arrival_order_replays_the_file_as_the_worker_read_it(tmp_path: Path) -> None:
    """`--arrival-order`: the example log is in time order, so nothing is late and the actions are the ordinary
    replay's; reversed, with a lateness bound of 0, late events show as `late` in the audit."""
    journeys = folder(tmp_path, "v1", V1)
    ordinary = cli("simulate", "--journeys", journeys, "--events", str(EXAMPLE), cwd=tmp_path)
    arrived = cli("simulate", "--journeys", journeys, "--events", str(EXAMPLE), "--arrival-order", cwd=tmp_path)
    assert ordinary.returncode == arrived.returncode == 0
    assert arrived.stdout == ordinary.stdout and ordinary.stdout
    reversed_log = tmp_path / "reversed.jsonl"
    reversed_log.write_bytes(b"".join(reversed(EXAMPLE.read_bytes().splitlines(keepends=True))))
    audit = tmp_path / "audit.jsonl"
    late = cli("simulate", "--journeys", journeys, "--events", str(reversed_log), "--arrival-order",
               "--audit", str(audit), cwd=tmp_path, ORCH_MAX_LATENESS="0")  # fmt: skip
    assert late.returncode == 0, late.stderr
    kinds = [orjson.loads(line)["kind"] for line in audit.read_bytes().splitlines()]
    assert "late" in kinds
    refused = cli("simulate", "--journeys", journeys, "--events", str(EXAMPLE), "--arrival-order",
                  "--deploy", f"{DEPLOY_AT}={journeys}", cwd=tmp_path)  # fmt: skip
    assert refused.returncode == 2 and "--arrival-order" in refused.stderr
