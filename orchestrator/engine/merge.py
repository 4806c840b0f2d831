"""Folding an anonymous customer's profile into the known customer it turned out to be."""

from __future__ import annotations

from typing import Any

from orchestrator.engine.profile import cart_value, remember_purchased


def fold_profile(into: dict[str, Any], other: dict[str, Any]) -> None:
    """Cart items, counters, channels and consent folded in; where both know a value, the known customer's wins."""
    for channel in other["channels"]:
        if channel not in into["channels"]:
            into["channels"].append(channel)
    for kind, count in other["events"].items():
        into["events"][kind] = into["events"].get(kind, 0) + count
    for name, value in other["traits"].items():
        into["traits"].setdefault(name, value)
    for channel, granted in other["consent"].items():
        into["consent"].setdefault(channel, granted)
    cart = into["cart"]
    for item in other["cart"]:
        same = next((mine for mine in cart if mine["sku"] == item["sku"]), None)
        if same is None:
            cart.append(dict(item))
        else:
            same["quantity"] += item["quantity"]
    into["cart_value"] = cart_value(cart)
    into["lifetime_value"] = round(into["lifetime_value"] + other["lifetime_value"], 2)
    into["orders"] += other["orders"]
    for latest in ("last_seen_at", "last_purchase_at"):
        if other.get(latest) and other[latest] > into.get(latest, ""):
            into[latest] = other[latest]
            if latest == "last_seen_at":
                into["last_channel"] = other["last_channel"]
    for code, offer in other.get("offers", {}).items():
        into.setdefault("offers", {}).setdefault(code, offer)
    if other.get("purchased"):
        mine, into["purchased"] = into.get("purchased", []), list(other["purchased"])
        remember_purchased(into, mine)  # the known customer's purchases count as the later ones
    if "last_store_id" in other:
        into.setdefault("last_store_id", other["last_store_id"])
