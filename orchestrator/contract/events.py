"""Touchpoint events: the JSON that channels produce to the `touchpoints` topic.

`parse_event` validates at the edge with pydantic and hands the engine a slim `Event`,
so the hot loop never pays for pydantic again.
"""

from __future__ import annotations

from dataclasses import dataclass
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


class _Props(BaseModel):
    model_config = ConfigDict(extra="allow", strict=False)


class _CartAdd(_Props):
    sku: str = Field(min_length=1)
    price: float = Field(ge=0)
    quantity: int = Field(default=1, ge=1)
    name: str | None = None


class _CartRemove(_Props):
    sku: str = Field(min_length=1)


class _Purchase(_Props):
    order_id: str = Field(min_length=1)
    value: float = Field(ge=0)
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
    value: float | None = Field(default=None, ge=0)  # the order's amount, when the till knows it (kpis: revenue)


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


@dataclass(slots=True, frozen=True)
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


def event_from_document(document: object) -> Event:
    if not isinstance(document, dict):
        raise InvalidEvent(f"an event must be a JSON object, got {type(document).__name__}")
    if nesting_depth(document) > MAX_DEPTH:
        raise InvalidEvent(f"nested too deeply: more than {MAX_DEPTH} levels of objects and arrays")
    try:
        return event_from_model(TouchpointEvent.model_validate(document))
    except ValidationError as exc:
        raise InvalidEvent(describe_validation_error(exc)) from None
