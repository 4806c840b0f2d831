"""`simulate` refuses the input lines the worker dead-letters for their size, with the worker's own reason."""

import orjson

from orchestrator.contract.events import MAX_EVENT_BYTES
from orchestrator.settings import Settings
from orchestrator.simulate import BadLine, read_event_lines
from orchestrator.stream.records import Rejected, accept


def event_line(size: int, event_id: str = "e-1") -> bytes:
    """A valid event of exactly `size` bytes (its JSON, without the line break)."""
    document = {"event_id": event_id, "type": "page_view", "occurred_at": "2026-03-02T10:00:00Z", "channel": "web",
                "customer_id": "c-1", "properties": {"pad": ""}}  # fmt: skip
    document["properties"] = {"pad": "x" * (size - len(orjson.dumps(document)))}
    line = orjson.dumps(document)
    assert len(line) == size
    return line


def test_a_line_over_the_limit_is_a_bad_line_with_the_dead_letter_reason() -> None:
    big, fits = event_line(2000, "big"), event_line(1024, "fits")
    log = read_event_lines([fits + b"\n", big + b"\n", fits.replace(b'"fits"', b'"also"') + b"\r\n"], max_bytes=1024)
    assert [e.id for e in log.events] == ["also", "fits"]  # the limit counts the record, not its break
    rejected = accept(big, 1024)
    assert isinstance(rejected, Rejected)
    assert log.bad == [BadLine(2, rejected.reason)]
    assert rejected.reason == "too large: 2,000 bytes, the limit is 1,024 (ORCH_MAX_EVENT_BYTES)"


def test_the_limit_counts_bytes_not_characters() -> None:
    line = event_line(1030).replace(b'"xxxxxxxxxx', '"éééé'.encode(), 1)  # 10 bytes out, 8 in: 4 characters
    assert len(line) == 1028 and len(line.decode()) == 1024
    log = read_event_lines([line.decode()], max_bytes=1024)  # text lines are measured as UTF-8 too
    assert log.events == [] and log.bad[0].reason.startswith("too large: 1,028 bytes")


def test_the_default_is_the_workers_1_mib() -> None:
    assert Settings.model_fields["max_event_bytes"].default == MAX_EVENT_BYTES == 1_048_576
    log = read_event_lines([event_line(MAX_EVENT_BYTES, "edge"), event_line(MAX_EVENT_BYTES + 1, "over")])
    assert [e.id for e in log.events] == ["edge"] and [b.line for b in log.bad] == [2]
