"""Merging an anonymous customer into the known customer it turned out to be: its profile, runs and timers."""

from __future__ import annotations

from typing import Any

from orchestrator.engine.outcome import Outcome, audit
from orchestrator.engine.profile import cart_value, fold_recent, remember_purchased
from orchestrator.engine.state import INACTIVE, SEEN_EVENT_IDS, Armed, CustomerState, History, Timer


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
    fold_recent(into, other)
    theirs = other.get("programme")
    if theirs is not None:
        mine = into.setdefault("programme", {**theirs, "conversions": 0, "revenue": 0})
        mine["conversions"] += theirs["conversions"]
        mine["revenue"] = round(mine["revenue"] + theirs["revenue"], 2)


def absorb(state: CustomerState, other: CustomerState, now: int) -> Outcome:
    """Merge an anonymous customer into `state` (the known one it turned out to be).

    Profile folded in; runs move over with their timers (renumbered, so their action ids never
    collide with the known customer's), except into a journey the known customer is already
    running: that run ends, reason `merged`, recorded with the number it had and `from` (the anonymous key), so
    it is never taken for the known customer's run of that number. The caller then empties `other`.
    """
    out = Outcome(state, now)
    audit(out, "merged", None, into=state.key, **{"from": other.key})  # every merge, runs in flight or none
    fold_profile(state.profile, other.profile)
    for jid, theirs in other.history.items():
        mine = state.history.setdefault(jid, History())
        if jid in other.runs and jid not in state.runs:
            continue  # counted below, as the run moves over
        mine.runs += theirs.runs
        if theirs.exited is not None and (mine.exited is None or theirs.exited > mine.exited):
            mine.exited = theirs.exited
    for jid, theirs in other.history.items():  # a journey's sends count for its max_sends, whoever got them
        if theirs.sends:
            mine = state.history.setdefault(jid, History())
            mine.sends = sorted(mine.sends + theirs.sends)
    for jid, alarm in other.armed.items():  # an inactivity trigger waits from the later of the two
        known = state.armed.get(jid)
        if known is not None:
            state.armed[jid] = known._replace(enters=max(known.enters, alarm.enters))
        else:
            state.timer_seq += 1
            state.armed[jid] = Armed(alarm.due, f"{INACTIVE}.{state.timer_seq}", alarm.enters)
            out.timers.append(Timer(alarm.due, state.key, jid, state.armed[jid].token))
    for jid, run in other.runs.items():
        audit(out, "merged", run, into=state.key, **{"from": other.key})
        if jid in state.runs:  # the anonymous run ends under its own number: `from` says whose it was
            audit(out, "exited", run, reason="merged", **{"from": other.key})
            continue
        history = state.history.setdefault(jid, History())
        history.runs += 1
        history.version, history.entered, history.exited = run.version, run.entered, None
        history.holdout, history.converted = run.holdout, other.history[jid].converted
        history.path, history.offers = other.history[jid].path, other.history[jid].offers
        offers = state.profile.get("offers", {})
        for code, offer in other.profile.get("offers", {}).items():  # coupons the moved run issued follow it
            if offer["journey"] == jid and offer["run"] == run.number and code in offers:
                offers[code]["run"] = history.runs
        run.number = history.runs
        state.runs[jid] = run
        if run.wait is not None:
            state.timer_seq += 1
            run.wait.token = f"{run.number}.{state.timer_seq}"
            out.timers.append(Timer(run.wait.due, state.key, jid, run.wait.token))
    state.sends = sorted(state.sends + other.sends)
    for offer_id, times in other.offer_sends.items():
        state.offer_sends[offer_id] = sorted(state.offer_sends.get(offer_id, []) + times)[-100:]
    for event_id in other.seen:
        state.seen.setdefault(event_id, None)
    for identifier, seen_at in other.identifiers.items():
        state.identifiers[identifier] = max(state.identifiers.get(identifier, 0), seen_at)
    while len(state.seen) > SEEN_EVENT_IDS:
        del state.seen[next(iter(state.seen))]
    return out
