"""The CLI as a user runs it: a real process, real files, exit codes and messages."""

import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "examples" / "events.jsonl"
GOLDEN = ROOT / "tests" / "golden" / "shipped-journeys.expected.jsonl"


def cli(*args: str, stdin: bytes | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    process = subprocess.run(
        [sys.executable, "-c", "from orchestrator.commands.cli import main; main()", *args],
        input=stdin.decode() if stdin else None, capture_output=True, text=True, cwd=cwd, timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": str(cwd)},
    )  # fmt: skip
    assert "Traceback" not in process.stderr + process.stdout
    return process


@pytest.mark.parametrize("command", [[], ["init"], ["validate"], ["simulate"], ["report"]])
def test_help_everywhere(command: list[str]) -> None:
    done = cli(*command, "--help")
    assert done.returncode == 0 and "Usage: orchestrator" in done.stdout


def test_validate_the_shipped_journeys() -> None:
    done = cli("validate")
    assert done.returncode == 0, done.stdout
    assert "ok: 4 journey(s) valid" in done.stdout


def test_validate_reports_every_problem_and_exits_1(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "journeys", tmp_path / "j")
    broken = tmp_path / "j" / "abandoned-cart.yaml"
    broken.write_text(broken.read_text().replace("wait: 30m", "wait: 30x").replace("channel: email", "chanel: email"))
    done = cli("validate", str(tmp_path / "j"))
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert f"{broken}:14: steps.0.wait: bad duration '30x'" in lines[0]
    assert any(f"{broken}:17: steps.1.send: unknown field 'chanel' (did you mean 'channel'?)" in x for x in lines)
    assert lines[-1].startswith("3 problem(s)")


def line_of(path: Path, text: str) -> int:
    return next(number for number, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_validate_reports_offer_catalogue_problems_with_file_and_line(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "journeys", tmp_path / "j")
    offers = tmp_path / "j" / "offers.yaml"
    text = offers.read_text()
    for old, new in (("within: 30d}", "within: 30x}"), ("weights: {profile.", "weights: {profil."),
                     ("id: free-gift", "id: Free_Gift")):  # fmt: skip
        assert old in text
        text = text.replace(old, new, 1)
    offers.write_text(text)
    done = cli("validate", str(tmp_path / "j"))
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    for expected in (
        f"{offers}:{line_of(offers, 'profil.')}: offers.0.score.weights.profil.cart_value: unknown path root 'profil'",
        f"{offers}:{line_of(offers, '30x')}: offers.0.cap.within: bad duration '30x'",
        f"{offers}:{line_of(offers, 'Free_Gift')}: offers.1.id: bad offer id 'Free_Gift': use lower-case letters",
    ):
        assert any(line.startswith(expected) for line in lines), (expected, lines)
    assert not any("unknown offer" in line or "has the tag" in line for line in lines)  # the catalogue's fault
    assert lines[-1].startswith("3 problem(s)")


def test_validate_names_unknown_offers_and_tags_of_decide_steps(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "journeys", tmp_path / "j")
    journey = tmp_path / "j" / "web-to-store.yaml"
    shipped = journey.read_text()
    assert "offers: {tags: [store]}" in shipped
    journey.write_text(shipped.replace("offers: {tags: [store]}", "offers: [cart-10, free-gfit]"))
    done = cli("validate", str(tmp_path / "j"))
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        f"{journey}:{line_of(journey, 'free-gfit')}: steps.0.on_event.0.decide.offers: unknown offer 'free-gfit': "
        f"not in {tmp_path / 'j' / 'offers.yaml'} (did you mean 'free-gift'?)",
        f"1 problem(s) in {tmp_path / 'j'}",
    ]
    journey.write_text(shipped)
    (tmp_path / "j" / "offers.yaml").unlink()
    done = cli("validate", str(tmp_path / "j"))
    assert done.returncode == 1
    assert done.stdout.splitlines()[0] == (
        f"{journey}:{line_of(journey, 'tags: [store]')}: steps.0.on_event.0.decide.offers: no offer in offers.yaml "
        "has the tag 'store' (there is no offers.yaml: the offer catalogue goes beside the journeys)"
    )


def test_simulate_prints_the_actions_as_json_lines() -> None:
    done = cli("simulate", "--journeys", "journeys", "--events", str(EXAMPLE))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == GOLDEN.read_text().splitlines()
    assert "simulated 22 events for 8 customers" in done.stderr and "1 duplicate(s) ignored" in done.stderr


def test_simulate_skips_bad_lines_with_their_number(tmp_path: Path) -> None:
    lines = EXAMPLE.read_text().splitlines()
    lines.insert(2, "{not json")
    lines.insert(5, '{"event_id": "x", "type": "cart_add", "channel": "web", "customer_id": "c"}')
    lines.insert(7, '{"event_id": "y", "type": "page_view", "occurred_at": "2026-03-02T10:00:00", '
                    '"channel": "web", "customer_id": "c"}')  # fmt: skip
    log = tmp_path / "events.jsonl"
    log.write_text("\n".join(lines) + "\n")
    done = cli("simulate", "--events", str(log))
    assert done.returncode == 0
    assert f"{log}:3: skipped: not JSON" in done.stderr
    assert f"{log}:6: skipped: occurred_at: missing required field 'occurred_at'" in done.stderr
    assert f"{log}:8: skipped: occurred_at: time '2026-03-02T10:00:00' has no UTC offset" in done.stderr
    assert done.stdout.splitlines() == GOLDEN.read_text().splitlines()  # the rest still ran


def test_simulate_reads_stdin_and_explains_on_stderr() -> None:
    done = cli("simulate", "--events", "-", "--explain", stdin=EXAMPLE.read_bytes())
    assert done.stdout.splitlines() == GOLDEN.read_text().splitlines()
    assert "customer c-giulia" in done.stderr
    assert "deferred    abandoned-cart v1 > reminder-email: push cart-reminder held until 2026-03-03T07:00:00Z" \
        in done.stderr  # fmt: skip
    assert "suppressed  web-to-store v2 > store-offer: instore store-coupon for offer cart-10 not sent: holdout" \
        in done.stderr  # fmt: skip
    assert "decided     web-to-store v2 > store-offer: picked cart-10" in done.stderr


def test_simulate_until_and_audit_file(tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    done = cli("simulate", "--events", str(EXAMPLE), "--until", "2026-03-03T00:00:00Z", "--audit", str(audit))
    actions = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert actions and all(a["at"] <= "2026-03-03T00:00:00Z" for a in actions)
    assert len(actions) < len(GOLDEN.read_text().splitlines())
    records = [orjson.loads(line) for line in audit.read_text().splitlines()]
    assert {r["kind"] for r in records} >= {"entered", "sent", "suppressed", "exited"}


def test_simulate_compare_shows_what_an_edit_changes(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "journeys", tmp_path / "next")
    edited = tmp_path / "next" / "abandoned-cart.yaml"
    edited.write_text(edited.read_text().replace("wait: 30m", "wait: 1h"))
    (tmp_path / "next" / "post-purchase.yaml").unlink()
    done = cli("simulate", "--events", str(EXAMPLE), "--compare", str(tmp_path / "next"))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    moved = "~ moved    2026-03-02T10:30:00Z -> 2026-03-02T11:00:00Z  email cart-reminder"
    moved += "  abandoned-cart > reminder-email"
    assert moved in out
    assert "- removed  2026-03-04T16:10:00Z  email complementary-products  post-purchase > complementary-email" in out
    assert "total: 0 added, 2 removed, " in out


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["simulate", "--events", "nope.jsonl"], 1, "nope.jsonl: cannot read the event log"),
        (["simulate", "--events", "examples/events.jsonl", "--journeys", "nowhere"], 1, "nowhere: no such file"),
        (["simulate", "--events", "examples/events.jsonl", "--until", "soon"], 2, "not an RFC 3339 time"),
        (["simulate"], 2, "Missing option '--events'"),
        (["frobnicate"], 2, "No such command"),
    ],
)
def test_errors_are_sentences_with_meaningful_exit_codes(args: list[str], code: int, message: str) -> None:
    done = cli(*args)
    assert done.returncode == code and message in done.stderr


def test_report_prints_kpis_writes_the_dashboard_and_agrees_with_simulate(tmp_path: Path) -> None:
    actions = [orjson.loads(line) for line in cli("simulate", "--events", str(EXAMPLE)).stdout.splitlines()]
    as_json = cli("report", "--events", str(EXAMPLE), "--json")
    assert as_json.returncode == 0, as_json.stderr
    kpis = orjson.loads(as_json.stdout)
    assert sum(kpis["channels"].values()) == len(actions)
    for jid, journey in kpis["journeys"].items():
        assert sum(journey["sends"].values()) == sum(1 for a in actions if a["journey"] == jid)
    assert kpis["coupons"]["issued"] == sum(1 for a in actions if "coupon" in a)

    page = tmp_path / "kpis.html"
    shown = cli("report", "--events", str(EXAMPLE), "--html", str(page))
    assert shown.returncode == 0 and "Treatment vs holdout" in shown.stdout and "Cross-channel" in shown.stdout
    html = page.read_text()
    entered = kpis["journeys"]["abandoned-cart"]["entered"]
    assert f'<g class="bar" data-label="entered" data-value="{entered}">' in html
    assert 'data-chart="lift-web-to-store-interval"' in html


def test_report_names_a_missing_log_and_exits_1() -> None:
    done = cli("report", "--events", "nowhere.jsonl")
    assert done.returncode == 1 and "nowhere.jsonl: cannot read the event log" in done.stderr


def test_init_writes_the_shipped_files_once(tmp_path: Path) -> None:
    done = cli("init", str(tmp_path / "project"))
    assert done.returncode == 0, done.stderr
    project = tmp_path / "project"
    assert (project / "journeys" / "policy.yaml").read_bytes() == (ROOT / "journeys" / "policy.yaml").read_bytes()
    assert (project / "examples" / "events.jsonl").read_bytes() == EXAMPLE.read_bytes()
    (project / "journeys" / "welcome.yaml").write_text("edited")
    again = cli("init", str(project))
    assert again.returncode == 1 and "already exists" in again.stderr and "nothing written" in again.stderr
    assert (project / "journeys" / "welcome.yaml").read_text() == "edited"
