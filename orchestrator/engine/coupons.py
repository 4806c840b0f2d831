"""Coupons: issued with a send (`offers.<code>` on the profile), redeemed once at the till before they expire,
and the revenue of the order they paid for."""

from __future__ import annotations

from orchestrator.contract.events import Event
from orchestrator.contract.values import Coupon
from orchestrator.engine.ids import coupon_code
from orchestrator.engine.outcome import Outcome, Record, audit, occurrence_of, offers_of
from orchestrator.engine.state import Run
from orchestrator.timefmt import format_ms


def issue(out: Outcome, run: Run, action: Record, spec: Coupon, secret: bytes) -> None:
    """Put a coupon on `action` and remember it on the profile, for the till to redeem."""
    coupon = {
        "code": coupon_code(action["action_id"], secret),
        "discount_percent": spec.discount_percent,
        "expires_at": format_ms(out.now + spec.valid_for),
    }
    action["coupon"] = coupon
    out.state.profile.setdefault("offers", {})[coupon["code"]] = {
        "journey": run.journey, "run": run.number, "action_id": action["action_id"], "issued_at": out.at,
        "discount_percent": coupon["discount_percent"], "expires_at": coupon["expires_at"], "status": "issued",
    }  # fmt: skip


def redeem(out: Outcome, event: Event) -> None:
    """A coupon used at the till: once, before it expires; it converts the journey that issued it."""
    props = event.data["properties"]
    offer = out.state.profile.get("offers", {}).get(props["code"])
    reason = None
    if offer is None:
        reason = "unknown"
    elif offer["status"] == "redeemed":
        reason = "already_redeemed"
    elif offer["expires_at"] <= out.at:
        reason = "expired"
    if reason is not None or offer is None:
        audit(out, "coupon_rejected", None, code=props["code"], reason=reason, event_id=event.id)
        return
    offer.update(status="redeemed", redeemed_at=out.at, store_id=props.get("store_id"),
                 order_id=props.get("order_id"))  # fmt: skip
    value = props.get("value")
    if value is not None:
        offer["revenue"] = value
    audit(out, "coupon_redeemed", None, code=props["code"], journey=offer["journey"], event_id=event.id,
                **({} if value is None else {"value": value}))  # fmt: skip
    history = out.state.history.get(offer["journey"])
    if history is not None and history.runs == offer["run"] and not history.converted:
        history.converted = True
        audit(out, "converted", None, journey=offer["journey"], version=history.version, run=history.runs,
                    holdout=history.holdout, event_id=event.id, via="coupon", path=list(history.path),
                    **offers_of(history), **occurrence_of(history))  # fmt: skip

def coupon_revenue(out: Outcome, event: Event) -> None:
    """A purchase paid with a redeemed coupon (same order_id): its value is that coupon's revenue, once."""
    order_id = event.data["properties"]["order_id"]
    for code, offer in out.state.profile.get("offers", {}).items():
        if offer["status"] == "redeemed" and offer.get("order_id") == order_id and "revenue" not in offer:
            offer["revenue"] = event.data["properties"]["value"]
            audit(out, "coupon_revenue", None, code=code, journey=offer["journey"],
                        value=offer["revenue"], event_id=event.id)  # fmt: skip
            return
