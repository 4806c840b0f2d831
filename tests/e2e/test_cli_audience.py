"""`orchestrator audience` as a user runs it: a segment's size at a time and its first keys, or JSON."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

ROOT = Path(__file__).parents[2]
SEGMENTS = """segments:
  buyers: {profile.orders: {gte: 1}}
  big: {all: [{segment: buyers}, {profile.lifetime_value: {gte: 100}}]}
"""
JOURNEY = "id: j\ntrigger: {event: purchase}\nsteps:\n  - send: {channel: email, template: t}\n"


def event(n: int, kind: str, at: str, customer: str, **props: object) -> bytes:
    who = {"anonymous_id": customer[5:]} if customer.startswith("anon:") else {"customer_id": customer}
    return orjson.dumps({"event_id": f"e{n}", "type": kind, "occurred_at": at, "channel": "web", **who,
                         "properties": props})  # fmt: skip


def setup(tmp_path: Path) -> tuple[Path, Path]:
    folder = tmp_path / "journeys"
    folder.mkdir()
    (folder / "segments.yaml").write_text(SEGMENTS)
    (folder / "j.yaml").write_text(JOURNEY)
    lines = [event(i, "purchase", f"2026-03-02T1{i % 10}:00:00Z", f"c-{i:02d}", order_id=f"o{i}", value=30 * i)
             for i in range(1, 9)]  # fmt: skip
    lines += [event(30, "page_view", "2026-03-02T10:30:00Z", "anon:cookie"),
              event(31, "purchase", "2026-03-02T10:30:00Z", "anon:cookie2", order_id="x", value=500)]  # fmt: skip
    log = tmp_path / "events.jsonl"
    log.write_bytes(b"\n".join(lines) + b"\n")
    return folder, log


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from orchestrator.commands.cli import main; main()", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)  # fmt: skip


def test_the_size_and_first_keys_at_the_logs_end_and_at_a_time(tmp_path: Path) -> None:
    folder, log = setup(tmp_path)
    done = cli("audience", "big", "--journeys", folder, "--events", log)
    assert done.returncode == 0, done.stderr
    # at 18:00 (the last event) c-08's first event is not before the instant; 120 and more from c-04 on
    assert done.stdout.splitlines() == ["segment big at 2026-03-02T18:00:00Z: 4 customer(s)",
                                        "  c-04", "  c-05", "  c-06", "  c-07"]  # fmt: skip
    done = cli("audience", "buyers", "--journeys", folder, "--events", log, "--at", "2026-03-02T13:30:00Z", "--json")
    assert orjson.loads(done.stdout) == {"segment": "buyers", "at": "2026-03-02T13:30:00Z", "size": 3,
                                         "customers": ["c-01", "c-02", "c-03"]}  # fmt: skip
    everyone = orjson.loads(cli("audience", "all", "--journeys", folder, "--events", log, "--json").stdout)
    assert everyone["size"] == 7  # known customers whose first event is before 18:00; anonymous visitors never


def test_an_unknown_segment_is_a_usage_error_with_a_guess(tmp_path: Path) -> None:
    folder, log = setup(tmp_path)
    done = cli("audience", "buyer", "--journeys", folder, "--events", log)
    assert done.returncode == 2
    assert "unknown segment 'buyer' (did you mean 'buyers'?); segments: big, buyers, and all" in done.stderr
