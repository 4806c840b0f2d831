"""What travels on the worker's topics, as bytes: pure functions, tested without a broker.

- `touchpoints` (input): the event contract's JSON, from any producer.
- `<app>.customers` (internal): the validated event, or a timer firing, keyed by customer key.
- `touchpoints.dlq`: what could not be accepted, with the reason and where it came from.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from orchestrator.contract.events import Event, InvalidEvent, parse_event, too_large
from orchestrator.engine import CustomerState, Timer
from orchestrator.engine.step import Absorb as Absorb
from orchestrator.engine.step import Handover as Handover

INPUT_MAX_MESSAGE_BYTES = 8 * 1024 * 1024  # the broker takes large inputs so the worker can refuse them with a reason
# Every record the worker writes fits in this (producer request size and the topics' max.message.bytes), and a
# customer's state is refused beyond MAX_STATE_BYTES: an action or a changelog record is never too large to send.
MAX_RECORD_BYTES = 16 * 1024 * 1024
MAX_STATE_BYTES = 4 * 1024 * 1024
DLQ_VALUE_BYTES = 65_536  # original bytes kept in a DLQ record; the size and a SHA-256 tell the rest


class Refused(Exception):
    """A record the worker will not apply (the message says why): it goes to the DLQ, nothing of it is sent."""


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: str


def accept(raw: bytes | None, max_bytes: int) -> Event | Rejected:
    """Validate one input record; never raises."""
    if raw is None:
        return Rejected("empty record (no value)")
    if (reason := too_large(raw, max_bytes)) is not None:
        return Rejected(reason)
    try:
        return parse_event(raw)
    except InvalidEvent as exc:
        return Rejected(str(exc))
    except RecursionError:
        return Rejected("not JSON (nested too deeply)")


@dataclass(frozen=True, slots=True)
class Expect:
    """To the known customer's partition, ahead of a merge: hold this customer's records until the anonymous
    customers' states arrive, so its later events run after the merge, as in `simulate`."""

    customer: str
    anonymous: tuple[str, ...]
    ts: int
    tie: str = ""  # the merging event's id: with `ts`, where the merge runs among the customer's records


@dataclass(frozen=True, slots=True)
class Mark:
    """To every customers partition, from the worker that ingests input partition `source` (of `sources`): every
    record of that partition with an event time at or before `until` (ms) is already on this partition, or late."""

    source: int
    sources: int
    until: int
    committed: int = 0  # the input partition's committed offset: the same in every customers partition's copy


def encode_mark(mark: Mark) -> bytes:
    return orjson.dumps({"mark": [mark.source, mark.sources, mark.until, mark.committed]})


def _event_fields(event: Event) -> dict[str, Any]:
    return {"event": event.data, "ts": event.ts, "customer": event.customer, "identifiers": event.identifiers}


def _event_from(record: dict[str, Any]) -> Event:
    data = record["event"]
    return Event(
        data["event_id"], data["type"], record["ts"], data["channel"], record["customer"], data,
        identifiers=tuple(record["identifiers"]),
    )  # fmt: skip


def encode_event(event: Event) -> bytes:
    return orjson.dumps(_event_fields(event))


def encode_handover(anonymous: str, to: str, ts: int, event: Event | None, tie: str) -> bytes:
    """`tie`: the merging event's id, where the handover runs among the anonymous customer's records."""
    fields = {"from": anonymous, "to": to, "ts": ts, "event": event and _event_fields(event), "tie": tie}
    return orjson.dumps({"handover": fields})


def handover_tie(raw: bytes) -> str:
    return str(orjson.loads(raw)["handover"].get("tie", ""))


def encode_absorb(item: Absorb) -> bytes:
    fields = {"to": item.customer, "from": item.source, "state": item.state, "ts": item.ts,
              "event": item.event and _event_fields(item.event)}  # fmt: skip
    return orjson.dumps({"absorb": fields})


def encode_expect(customer: str, anonymous: list[str], ts: int, tie: str) -> bytes:
    return orjson.dumps({"expect": {"customer": customer, "anonymous": anonymous, "ts": ts, "tie": tie}})


def encode_timer(timer: Timer, partition: int) -> bytes:
    """A timer firing on the internal topic, and an entry of the `timers` table: the same bytes."""
    return orjson.dumps({"timer": [timer.due, timer.customer, timer.journey, timer.token], "partition": partition})


def decode_timer(raw: bytes) -> tuple[Timer, int]:
    record = orjson.loads(raw)
    return Timer(*record["timer"]), record["partition"]


def encode_state(state: CustomerState) -> bytes:
    return orjson.dumps(state.to_dict())


def decode_state(raw: bytes) -> CustomerState:
    return CustomerState.from_dict(orjson.loads(raw))


Internal = Event | Timer | Handover | Absorb | Expect | Mark


def decode_internal(raw: bytes) -> Internal:
    """The internal topic is written only by the worker, so it is trusted (no re-validation)."""
    record = orjson.loads(raw)
    if "mark" in record:
        return Mark(*record["mark"])
    if "timer" in record:
        return decode_timer(raw)[0]
    if "handover" in record:
        fields = record["handover"]
        event = fields["event"] and _event_from(fields["event"])
        return Handover(fields["from"], fields["to"], fields["ts"], event)
    if "absorb" in record:
        fields = record["absorb"]
        event = fields["event"] and _event_from(fields["event"])
        return Absorb(fields["to"], fields["from"], fields["state"], fields["ts"], event)
    if "expect" in record:
        fields = record["expect"]
        return Expect(fields["customer"], tuple(fields["anonymous"]), fields["ts"], fields.get("tie", ""))
    return _event_from(record)


def _text_or_base64(raw: bytes, field: str) -> dict[str, Any]:
    try:
        return {field: raw.decode("utf-8")}
    except UnicodeDecodeError:
        return {f"{field}_base64": base64.b64encode(raw).decode()}


def dlq_record(
    reason: str, *, topic: str, partition: int, offset: int, timestamp_ms: int | None, key: bytes | None,
    value: bytes | None,
) -> bytes:  # fmt: skip
    """The reason, where the record came from, and its original bytes (the first 64 KiB of huge ones)."""
    record: dict[str, Any] = {
        "reason": reason,
        "source": {"topic": topic, "partition": partition, "offset": offset, "timestamp_ms": timestamp_ms},
    }
    if key is not None:
        record.update(_text_or_base64(key, "key"))
    if value is not None:
        kept = value[:DLQ_VALUE_BYTES]
        record.update(_text_or_base64(kept, "value"))
        record["size"] = len(value)
        if len(kept) < len(value):
            record["truncated"] = True
            record["sha256"] = hashlib.sha256(value).hexdigest()
    return orjson.dumps(record)
