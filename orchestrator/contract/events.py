"""Touchpoint events: the JSON that channels produce to the `touchpoints` topic.

`parse_event` validates at the edge with pydantic and hands the engine a slim `Event`,
so the hot loop never pays for pydantic again.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from orchestrator.contract.errors import describe_validation_error
from orchestrator.timefmt import format_ms, parse_rfc3339, to_ms

CHANNEL_PATTERN = r"^[a-z0-9_]+$"
MAX_ID_LENGTH = 256
EARLIEST, LATEST = datetime(1970, 1, 1, tzinfo=UTC), datetime(3000, 1, 1, tzinfo=UTC)


class InvalidEvent(ValueError):
    """An input record that cannot become an event; the message says why, in words."""


Number = int | float  # an amount keeps the form it was written in: 10 prints 10 in customer copy, not 10.0


class _Props(BaseModel):
    model_config = ConfigDict(extra="allow", strict=False)


class _CartAdd(_Props):
    sku: str = Field(min_length=1)
    price: Number = Field(ge=0)
    quantity: int = Field(default=1, ge=1)
    name: str | None = None


class _CartRemove(_Props):
    sku: str = Field(min_length=1)


class _Purchase(_Props):
    order_id: str = Field(min_length=1)
    value: Number = Field(ge=0)
    store_id: str | None = None
    # `items` (what was bought: objects with `sku`, or skus) is read by engine/profile.py, leniently: a log that
    # carried something else there before stays valid, and the cart is the basket then


class _StoreVisit(_Props):
    store_id: str = Field(min_length=1)


class _ConsentUpdate(_Props):
    channel: str = Field(pattern=CHANNEL_PATTERN)
    granted: bool = Field(strict=True)


class _CouponRedeemed(_Props):
    code: str = Field(pattern=r"^[0-9A-Z]{4}(-[0-9A-Z]{4}){3}$")
    store_id: str | None = None
    order_id: str | None = None
    value: Number | None = Field(default=None, ge=0)  # the order's amount, when the till knows it (kpis: revenue)


# Event types whose built-in profile effects need well-formed properties.
_PROPERTY_SCHEMAS: dict[str, type[_Props]] = {
    "cart_add": _CartAdd,
    "cart_remove": _CartRemove,
    "purchase": _Purchase,
    "store_visit": _StoreVisit,
    "consent_update": _ConsentUpdate,
    "coupon_redeemed": _CouponRedeemed,
}


IdentityKind = Annotated[str, Field(pattern=CHANNEL_PATTERN, max_length=50)]  # email, phone, loyalty_card, ...
IdentityValue = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH)]


class TouchpointEvent(BaseModel):
    """The event contract. Unknown top-level fields are kept (and reachable as `event.<field>`)."""

    model_config = ConfigDict(extra="allow")

    event_id: str = Field(min_length=1, max_length=MAX_ID_LENGTH)
    type: str = Field(min_length=1, max_length=100)
    occurred_at: datetime
    channel: str = Field(pattern=CHANNEL_PATTERN, max_length=50)
    customer_id: str | None = Field(default=None, min_length=1, max_length=MAX_ID_LENGTH)
    anonymous_id: str | None = Field(default=None, min_length=1, max_length=MAX_ID_LENGTH)
    properties: dict[str, Any] = Field(default_factory=dict)
    identities: dict[IdentityKind, IdentityValue] = Field(default_factory=dict)

    @field_validator("occurred_at", mode="before")
    @classmethod
    def _rfc3339(cls, value: object) -> datetime:
        if not isinstance(value, str):
            raise ValueError("must be an RFC 3339 string such as 2026-03-02T10:00:00Z")
        moment = parse_rfc3339(value)
        if not EARLIEST <= moment < LATEST:
            raise ValueError(f"time {value!r} is out of range ({EARLIEST.year} to {LATEST.year - 1})")
        return moment

    @model_validator(mode="after")
    def _who_and_what(self) -> TouchpointEvent:
        if self.customer_id is None and self.anonymous_id is None and not self.identities:
            raise ValueError("needs customer_id, anonymous_id or identities (at least one)")
        schema = _PROPERTY_SCHEMAS.get(self.type)
        if schema is not None:
            try:
                # Built-in effects read normalised properties (quantity defaults to 1, numbers are numbers).
                self.properties = schema.model_validate(self.properties).model_dump(exclude_none=True)
            except ValidationError as exc:
                raise ValueError(f"{self.type} properties: {describe_validation_error(exc)}") from None
        return self


@dataclass(slots=True, frozen=True, init=False)
class Event:
    """What the engine sees: the event as a JSON-like dict (for `event.` paths) plus derived keys."""

    id: str
    type: str
    ts: int  # occurred_at as epoch milliseconds
    channel: str
    customer: str  # the customer key (identity resolution may replace it)
    data: dict[str, Any]  # never holds raw identities: they are hashed into identifier keys first
    identities: tuple[tuple[str, str], ...] = ()  # raw (kind, value) pairs, only until resolution
    identifiers: tuple[str, ...] = ()  # after resolution: the identifier keys the event carried

    def __init__(self, id: str, type: str, ts: int, channel: str, customer: str, data: dict[str, Any],
                 identities: tuple[tuple[str, str], ...] = (), identifiers: tuple[str, ...] = ()) -> None:  # fmt: skip
        """The dataclass's own, at half the cost: a frozen one calls object.__setattr__ per field, this its slots'
        setters (an Event is built for every line of a log). Still frozen: assignment raises."""
        set_ = _EVENT_SLOTS
        set_[0](self, id)
        set_[1](self, type)
        set_[2](self, ts)
        set_[3](self, channel)
        set_[4](self, customer)
        set_[5](self, data)
        set_[6](self, identities)
        set_[7](self, identifiers)


_EVENT_SLOTS = tuple(getattr(Event, field.name).__set__ for field in fields(Event))


def customer_key(customer_id: str | None, anonymous_id: str | None) -> str:
    """The key before identity resolution: `customer_id`, else `anon:` + `anonymous_id` (else empty)."""
    if customer_id is not None:
        return customer_id
    return f"anon:{anonymous_id}" if anonymous_id is not None else ""


def event_from_model(model: TouchpointEvent) -> Event:
    ts = to_ms(model.occurred_at)
    data = model.model_dump(mode="json", exclude_none=True, exclude={"identities"})
    data["occurred_at"] = format_ms(ts)  # normalised to UTC so that times compare as text
    return Event(
        id=model.event_id,
        type=model.type,
        ts=ts,
        channel=model.channel,
        customer=customer_key(model.customer_id, model.anonymous_id),
        data=data,
        identities=tuple(model.identities.items()),
    )


def parse_event(raw: bytes | str) -> Event:
    """One JSON document -> Event, or InvalidEvent with every problem named."""
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(f"not JSON ({exc})") from None
    return event_from_document(document)


MAX_EVENT_BYTES = 1_048_576  # the default of ORCH_MAX_EVENT_BYTES: a larger input record is refused


def too_large(raw: bytes, max_bytes: int) -> str | None:
    """Why a record of these bytes is refused for its size (the worker's DLQ reason, `simulate`'s skipped line)."""
    if len(raw) <= max_bytes:
        return None
    return f"too large: {len(raw):,} bytes, the limit is {max_bytes:,} (ORCH_MAX_EVENT_BYTES)"


MAX_DEPTH = 64  # nesting of objects and arrays in an event: deeper ones break serialisers downstream (~255)


def nesting_depth(value: object) -> int:
    """How deeply objects and arrays nest (iterative: a hostile document must not exhaust the stack)."""
    if not isinstance(value, dict | list):
        return 0
    deepest, stack = 0, [(value, 1)]
    while stack:  # only containers go on the stack: an event's scalars cost one isinstance each
        item, depth = stack.pop()
        if depth > deepest:
            deepest = depth
        if depth <= MAX_DEPTH:
            for child in item.values() if isinstance(item, dict) else item:
                if isinstance(child, dict | list):
                    stack.append((child, depth + 1))
    return deepest


# ------------------------------------------------------------------------- the quick reading
# pydantic costs more than the engine's step per event. Most events are plain, so they are read here in one pass
# by rules that accept a subset of what the contract above accepts and give the same Event; anything else
# (a problem, or merely an unusual value such as a float for `quantity`) goes to pydantic, which decides and
# words the problem. tests/unit/test_event_quick.py holds the two readings to each other.


class _Unusual(Exception):
    """The quick reading does not vouch for this document."""


_CHANNEL = re.compile(r"[a-z0-9_]+")
_CODE = re.compile(r"[0-9A-Z]{4}(-[0-9A-Z]{4}){3}")
_CANONICAL = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.(?!000)\d{3})?Z", re.ASCII)  # as format_ms writes
_FIELDS = frozenset(TouchpointEvent.model_fields)
_CHANNELS = frozenset(("web", "app", "email", "sms", "push", "social", "ads", "store", "call_center"))  # the usual


def _plain(value: Any, depth: int) -> Any:
    """A copy of a JSON value, as model_dump(mode="json") gives it; `depth`: the level of a container here."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None or (kind is float and math.isfinite(value)):
        return value
    if depth > MAX_DEPTH:
        raise _Unusual
    if kind is list:
        return [_plain(item, depth + 1) for item in value]
    if kind is not dict:
        raise _Unusual
    copied = {}
    for key, item in value.items():
        kind = type(item)
        if type(key) is not str:
            raise _Unusual
        copied[key] = item if kind is str or kind is int or kind is bool or item is None else _plain(item, depth + 1)
    return copied


def _text(value: Any) -> str:
    if type(value) is str and value:
        return value
    raise _Unusual


def _any_text(value: Any) -> str:
    if type(value) is str:
        return value
    raise _Unusual


def _money(value: Any) -> int | float:
    if (type(value) is float and 0 <= value < math.inf) or (type(value) is int and 0 <= value < 2**53):
        return value  # as written: 10 stays 10 (a template prints it), 59.9 stays 59.9
    raise _Unusual


def _count(value: Any) -> int:
    if type(value) is int and value >= 1:
        return value
    raise _Unusual


def _channel(value: Any) -> str:
    if type(value) is str and _CHANNEL.fullmatch(value):
        return value
    raise _Unusual


def _code(value: Any) -> str:
    if type(value) is str and _CODE.fullmatch(value):
        return value
    raise _Unusual


def _boolean(value: Any) -> bool:
    if type(value) is bool:
        return value
    raise _Unusual


_REQUIRED = object()
_NONE: dict[str, Any] = {}  # an absent `properties` or `identities`: read, never written
# The fields of _PROPERTY_SCHEMAS in their order: (name, check, default); a None default: omitted when null.
_QUICK_FIELDS: dict[str, tuple[tuple[str, Callable[[Any], Any], Any], ...]] = {
    "cart_add": (("sku", _text, _REQUIRED), ("price", _money, _REQUIRED), ("quantity", _count, 1),
                 ("name", _any_text, None)),
    "cart_remove": (("sku", _text, _REQUIRED),),
    "purchase": (("order_id", _text, _REQUIRED), ("value", _money, _REQUIRED), ("store_id", _any_text, None)),
    "store_visit": (("store_id", _text, _REQUIRED),),
    "consent_update": (("channel", _channel, _REQUIRED), ("granted", _boolean, _REQUIRED)),
    "coupon_redeemed": (("code", _code, _REQUIRED), ("store_id", _any_text, None), ("order_id", _any_text, None),
                        ("value", _money, None)),
}  # fmt: skip
_QUICK_SCHEMAS = {kind: (fields, frozenset(name for name, _, _ in fields)) for kind, fields in _QUICK_FIELDS.items()}


def _extra(key: Any) -> str:
    """A key the model keeps as an extra: a plain name (pydantic has its own rules for `_` and `model_` ones)."""
    if type(key) is str and not key.startswith(("_", "model_")):
        return key
    raise _Unusual


def _properties(event_type: str, given: Any) -> dict[str, Any]:
    """`properties` as the model leaves them: a built-in type's fields checked, defaulted, in their order, then the
    other keys but nulls; any other type's as given."""
    if type(given) is not dict:
        raise _Unusual
    schema = _QUICK_SCHEMAS.get(event_type)
    if schema is None:
        return _plain(given, 2)  # type: ignore[no-any-return]
    fields, names = schema
    properties: dict[str, Any] = {}
    for name, check, default in fields:
        value = given.get(name)
        if value is not None:
            properties[name] = check(value)
        elif default is _REQUIRED or (default is not None and name in given):
            raise _Unusual
        elif default is not None:
            properties[name] = default
    for key, value in given.items():
        if value is not None and key not in names:
            properties[_extra(key)] = _plain(value, 3)
    return properties


def _id(value: Any) -> str | None:
    if value is None or (type(value) is str and 0 < len(value) <= MAX_ID_LENGTH):
        return value
    raise _Unusual


def _quick_event(document: dict[Any, Any]) -> Event:
    """The Event pydantic would give for `document`, or _Unusual."""
    get = document.get
    event_id, event_type, occurred_at, channel = get("event_id"), get("type"), get("occurred_at"), get("channel")
    if (type(event_id) is not str or not 0 < len(event_id) <= MAX_ID_LENGTH or type(event_type) is not str
            or not 0 < len(event_type) <= 100 or type(occurred_at) is not str or type(channel) is not str):  # fmt: skip
        raise _Unusual
    customer_id, anonymous_id = _id(get("customer_id")), _id(get("anonymous_id"))
    if channel not in _CHANNELS and (len(channel) > 50 or not _CHANNEL.fullmatch(channel)):
        raise _Unusual
    try:
        moment = datetime.fromisoformat(occurred_at)  # parse_rfc3339, without its messages: pydantic words them
    except ValueError:
        raise _Unusual from None
    if moment.tzinfo is None or not EARLIEST <= moment < LATEST:
        raise _Unusual
    identities = get("identities", _NONE)
    if type(identities) is not dict:
        raise _Unusual
    if identities and not all(
        type(kind) is str and len(kind) <= 50 and _CHANNEL.fullmatch(kind) and _id(value) is not None
        for kind, value in identities.items()
    ):
        raise _Unusual
    if customer_id is None and anonymous_id is None and not identities:
        raise _Unusual
    ts = to_ms(moment)
    data: dict[str, Any] = {"event_id": event_id, "type": event_type,
                            "occurred_at": occurred_at if _CANONICAL.fullmatch(occurred_at) else format_ms(ts),
                            "channel": channel}  # fmt: skip
    if customer_id is not None:
        data["customer_id"] = customer_id
    if anonymous_id is not None:
        data["anonymous_id"] = anonymous_id
    data["properties"] = _properties(event_type, get("properties", _NONE))
    if not document.keys() <= _FIELDS:  # extra top-level fields (most events have none)
        for key, value in document.items():
            if value is not None and key not in _FIELDS:
                data[_extra(key)] = _plain(value, 2)
    return Event(event_id, event_type, ts, channel, customer_key(customer_id, anonymous_id), data,
                 tuple(identities.items()))  # fmt: skip


def event_from_document(document: object) -> Event:
    """A document -> Event: the quick reading when it vouches for the document, else pydantic,
    which accepts or refuses it with every problem named. Both give the same Event for a document both accept."""
    if isinstance(document, dict):
        try:
            return _quick_event(document)
        except _Unusual:
            pass
    if not isinstance(document, dict):
        raise InvalidEvent(f"an event must be a JSON object, got {type(document).__name__}")
    if nesting_depth(document) > MAX_DEPTH:
        raise InvalidEvent(f"nested too deeply: more than {MAX_DEPTH} levels of objects and arrays")
    try:
        return event_from_model(TouchpointEvent.model_validate(document))
    except ValidationError as exc:
        raise InvalidEvent(describe_validation_error(exc)) from None
