"""Built-in profile effects, applied before any journey sees the event."""

from __future__ import annotations

from bisect import insort
from collections.abc import Iterable
from typing import Any

from orchestrator.contract.conditions import RECENT, RECENT_MAX_MS
from orchestrator.contract.events import Event


def _money(value: float) -> int | float:
    """Cents, and a whole amount as a whole number: a template prints a cart of 10 + 10 as 20, not 20.0."""
    rounded = round(value, 2)
    return int(rounded) if isinstance(rounded, float) and rounded.is_integer() else rounded


def cart_value(cart: list[dict[str, Any]]) -> int | float:
    return _money(sum(item["price"] * item["quantity"] for item in cart))


PURCHASED_LIMIT = 200  # distinct skus remembered as bought (recommendations leave them out), most recent last


def skus(value: Any) -> list[str]:
    """The skus of a list of items (objects with `sku`) or of skus, each once; anything else gives none."""
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        return []
    found: dict[str, None] = {}
    for item in value:
        sku = item.get("sku") if isinstance(item, dict) else item
        if isinstance(sku, str) and sku:
            found[sku] = None
    return list(found)


def remember_purchased(profile: dict[str, Any], skus: Iterable[str]) -> None:
    """Append `skus` to what the customer bought, each sku once (at its latest place), bounded."""
    latest = dict.fromkeys(reversed([*profile.get("purchased", ()), *skus]))
    profile["purchased"] = list(reversed(latest))[-PURCHASED_LIMIT:]


RECENT_LIMIT = 100  # event times kept per event type for `profile.recent` counts: exact up to this many


def remember_recent(profile: dict[str, Any], event_type: str, ts: int) -> None:
    """Keep the event's time for `profile.recent.<type>.<duration>`: per type, sorted, the latest RECENT_LIMIT within
    90 days of the latest. A count is therefore exact up to RECENT_LIMIT, and reads RECENT_LIMIT above it."""
    times: list[int] = profile.setdefault(RECENT, {}).setdefault(event_type, [])
    if not times or times[-1] <= ts:
        times.append(ts)  # in time order, as a replay feeds them: the usual case
        if len(times) <= RECENT_LIMIT and times[0] > ts - RECENT_MAX_MS:
            return  # nothing to drop
    else:
        insort(times, ts)
    since = times[-1] - RECENT_MAX_MS
    drop = max(len(times) - RECENT_LIMIT, 0)
    while drop < len(times) and times[drop] <= since:
        drop += 1
    if drop:
        del times[:drop]


def fold_recent(into: dict[str, Any], other: dict[str, Any]) -> None:
    """A merge: the anonymous customer's event times join the known customer's."""
    for event_type, times in other.get(RECENT, {}).items():
        for ts in times:
            remember_recent(into, event_type, ts)


def apply_event(profile: dict[str, Any], event: Event) -> tuple[str, ...]:
    """Fold one event into the profile (in place); a purchase's basket (its distinct skus, sorted) is returned.
    Properties were validated at the edge."""
    channels = profile["channels"]
    if event.channel not in channels:
        channels.append(event.channel)
    profile["last_channel"] = event.channel
    profile["last_seen_at"] = event.data["occurred_at"]
    counts = profile["events"]
    counts[event.type] = counts.get(event.type, 0) + 1
    remember_recent(profile, event.type, event.ts)

    kind = event.type
    props = event.data.get("properties", {})
    if kind in ("identify", "profile_update"):
        profile["traits"].update(props)
    elif kind == "cart_add":
        cart = profile["cart"]
        for item in cart:
            if item["sku"] == props["sku"]:
                item["quantity"] += props["quantity"]
                item["price"] = props["price"]
                if "name" in props:
                    item["name"] = props["name"]
                break
        else:
            item = {"sku": props["sku"], "price": props["price"], "quantity": props["quantity"]}
            if "name" in props:
                item["name"] = props["name"]
            cart.append(item)
        profile["cart_value"] = cart_value(cart)
    elif kind == "cart_remove":
        profile["cart"] = [item for item in profile["cart"] if item["sku"] != props["sku"]]
        profile["cart_value"] = cart_value(profile["cart"])
    elif kind == "purchase":
        basket = tuple(sorted(skus(props.get("items")) or skus(profile["cart"])))
        remember_purchased(profile, basket)
        profile["lifetime_value"] = _money(profile["lifetime_value"] + props["value"])
        profile["orders"] += 1
        profile["last_purchase_at"] = event.data["occurred_at"]
        profile["cart"] = []
        profile["cart_value"] = 0
        return basket
    elif kind == "store_visit":
        profile["last_store_id"] = props["store_id"]
    elif kind == "consent_update":
        profile["consent"][props["channel"]] = props["granted"]
    return ()
