"""`orchestrator report` on a log with a recurring broadcast to a segment: each segment's size at the end of each
day, and per occurrence its audience, entries, holdout, sends, suppressions and conversions (terminal, JSON, HTML)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

ROOT = Path(__file__).parents[2]
CASE = ROOT / "tests" / "golden" / "cases" / "schedule-recurring"
AT_CASE = ROOT / "tests" / "golden" / "cases" / "schedule-at"


def report(case: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from orchestrator.commands.cli import main; main()", "report",
                           "--journeys", str(case / "journeys"), "--events", str(case / "events.jsonl"), *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)  # fmt: skip


def test_per_occurrence_figures_and_segment_sizes_per_day(tmp_path: Path) -> None:
    done = report(CASE, "--json")
    assert done.returncode == 0, done.stderr
    summary = orjson.loads(done.stdout)
    rows = summary["broadcasts"]["digest"]
    # the log ends on the 10th: the occurrences up to then (simulate runs them up to the log's end)
    assert [(r["occurrence"], r["audience"], r["entered"], r["sent"]) for r in rows] == [
        ("2026-03-02", 3, 3, 3), ("2026-03-05", 4, 4, 4), ("2026-03-09", 3, 3, 3)]  # fmt: skip
    buyers = summary["segments"]["buyers"]
    assert buyers["2026-03-03"] == 3 and buyers["2026-03-04"] == 4  # c-2 bought on the 4th
    assert buyers["2026-03-06"] == 3  # c-3 erased on the 6th
    assert buyers["2026-03-10"] == 4  # back and a buyer again on the 10th (the log's end)
    held = orjson.loads(report(AT_CASE, "--json").stdout)["broadcasts"]["preview"]
    assert held == [{"occurrence": "2026-03-02T12:00:00Z", "audience": 3, "entered": 3, "held_out": 1, "sent": 2,
                     "converted": 0, "suppressed": {"holdout": 1}, "not_entered": {}}]  # until the log's end, 12:30
    text = report(CASE).stdout
    assert "Broadcasts of digest (per occurrence)" in text and "Segments: size at" in text
    page = tmp_path / "report.html"
    assert report(CASE, "--html", str(page)).returncode == 0
    html = page.read_text()
    assert 'data-chart="segment-sizes"' in html and 'data-label="buyers" data-value="4"' in html
    assert 'data-chart="broadcast-digest"' in html
