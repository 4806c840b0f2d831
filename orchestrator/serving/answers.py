"""What the API answers with, from the records the worker stored in Redis: a coupon's state now, a customer's safe
summary. No I/O: serving/api.py reads Redis and calls these."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from orchestrator.serving.keys import SAFE_TRAITS
from orchestrator.serving.schemas import Coupon, UnknownOffer
from orchestrator.timefmt import parse_rfc3339


def loads(value: bytes | str | None) -> dict[str, Any] | None:
    if value is None:
        return None
    loaded = orjson.loads(value)
    if not isinstance(loaded, dict):
        raise ValueError("a stored value is not a JSON object")
    return loaded


def coupon_state(coupon: Mapping[str, Any], now: datetime) -> str:
    """`redeemed`, else `expired` from `expires_at` on (or when it cannot be read: never honour an undated coupon),
    else `valid`."""
    if coupon.get("status") == "redeemed":
        return "redeemed"
    expires_at = coupon.get("expires_at")
    try:
        expiry = parse_rfc3339(expires_at) if isinstance(expires_at, str) else None
    except ValueError:
        expiry = None
    if expiry is None or now >= expiry:
        return "expired"
    return "valid"


def offer(code: str, coupon: Mapping[str, Any] | None, now: datetime) -> Coupon | UnknownOffer:
    """The answer about a coupon: its stored record (None: gone from Redis) with its state now."""
    if coupon is None:
        return UnknownOffer(code=code, state="unknown")
    stored = {k: v for k, v in coupon.items() if k not in ("code", "state")}
    return Coupon.model_validate({"code": code, "state": coupon_state(coupon, now), **stored})


def safe_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """Defence in depth: the worker stores only safe traits, and the API serves only those, whatever is stored."""
    traits = summary.get("traits")
    if isinstance(traits, dict):
        summary = {**summary, "traits": {k: v for k, v in traits.items() if k in SAFE_TRAITS}}
    return summary
