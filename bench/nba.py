"""Next-best-action fixtures for `bench.engine`: a generated offer catalogue, the baseline journeys, the counts.

- `generate_catalogue(n, seed)`: `n` offers, deterministic from the seed, shaped like a retailer's: eligibility
  on the cart value, event counts, traits and tier (some with `all` / `any` / `not`, a few with none); scores
  with weights on the cart, lifetime value and page views; priorities; caps on about 40 %; valid windows on about
  20 % (some of them open or close inside the bench's 4 days); mostly `instore`, some `push` / `email`, with
  fallbacks; coupons on about half; every tenth offer recommends complementary products for the cart. Nine in
  ten are tagged `store`, so the shipped web-to-store `decide: {offers: {tags: [store]}}` weighs ~n candidates.
- `baseline(journeys, catalogue)`: the same journeys with every `decide` step replaced by a plain `send` of one
  fixed offer-like template (`BASELINE_TEMPLATE`, on the channel most of the step's candidates use, with a
  coupon as most store offers have) and `recommend` removed from every send: what the engine costs without
  next best action, for `1 - A/B`.
- `nba_counts(result)`: what shows that decide and recommend really ran (decisions, offer sends, recommended
  items by source).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from typing import Any

from orchestrator.contract.journeys import (
    AnyStep,
    DecideStep,
    IfStep,
    Journey,
    SendSpec,
    SendStep,
    SplitStep,
    WaitForStep,
)
from orchestrator.contract.offers import Catalogue
from orchestrator.simulate import Result
from orchestrator.timefmt import format_ms

DAY_MS = 24 * 3_600_000
BASELINE_TEMPLATE = "bench-baseline-offer"

STORE_DATA = {"store_id": "{{ event.properties.store_id }}", "items": "{{ profile.cart }}",
              "cart_value": "{{ profile.cart_value }}"}  # fmt: skip
REMOTE_DATA = {"greeting": "Ciao {{ profile.traits.first_name }}", "cart_value": "{{ profile.cart_value }}",
               "store_id": "{{ event.properties.store_id }}"}  # fmt: skip


def _where(kind: str, rng: random.Random) -> dict[str, Any] | None:
    """The eligibility condition of an offer of this kind."""
    if kind == "cart":
        return {"profile.cart_value": {"gte": rng.choice((20, 30, 50, 80, 120))}}
    if kind == "visit":
        return {"profile.events.store_visit": {"lte": rng.choice((1, 2, 3))}}
    if kind == "tier":
        return {"profile.traits.tier": rng.choice(({"eq": "gold"}, {"in": ["silver", "gold"]}, {"ne": "bronze"}))}
    if kind == "browser":
        return {"profile.events.page_view": {"gte": rng.choice((3, 5, 10, 20))}}
    if kind == "buyer":
        return {"all": [{"profile.orders": {"gte": 1}},
                        {"profile.lifetime_value": {"gte": rng.choice((50, 100, 250))}}]}  # fmt: skip
    if kind == "mixed":
        return {"any": [{"profile.traits.tier": "gold"},
                        {"all": [{"profile.cart_value": {"gte": 40}}, {"profile.events.cart_add": {"gte": 2}}]},
                        {"not": {"profile.traits.first_name": {"exists": True}}}]}  # fmt: skip
    if kind == "local":
        return {"profile.traits.timezone": {"in": rng.choice((["Europe/Rome"], ["Europe/London", "Europe/Berlin"]))}}
    return None  # "anyone"


KINDS = ("cart", "cart", "visit", "tier", "browser", "buyer", "mixed", "local", "anyone")


def generate_catalogue(n: int, seed: int, start: int) -> Catalogue:
    """`n` offers, the same for the same seed; `start` (epoch ms) is where the bench's log begins."""
    rng = random.Random(f"offers-{seed}")
    offers: list[dict[str, Any]] = []
    for i in range(n):
        kind = KINDS[i % len(KINDS)] if i < len(KINDS) else rng.choice(KINDS)
        channel = rng.choices(("instore", "push", "email"), (70, 15, 15))[0]
        fallback = {"instore": rng.choices(([], ["push"]), (4, 1))[0],
                    "push": rng.choice(([], ["email"])), "email": rng.choice(([], ["push"]))}[channel]  # fmt: skip
        weights = {path: weight for path, weight in (("profile.cart_value", round(rng.uniform(0.01, 0.1), 3)),
                   ("profile.lifetime_value", round(rng.uniform(0.002, 0.02), 4)),
                   ("profile.events.page_view", round(rng.uniform(0.05, 0.5), 2))) if rng.random() < 0.5}  # fmt: skip
        offer: dict[str, Any] = {
            "id": f"{kind}-{i:03d}",
            "channel": channel,
            "template": f"offer-{kind}",
            "fallback": fallback,
            "score": {"base": round(rng.uniform(1, 15), 1), "weights": weights} if weights else rng.randrange(1, 16),
            "priority": rng.randrange(10, 91),
            "data": STORE_DATA if channel == "instore" else REMOTE_DATA,
            "tags": ["store", kind] if i % 10 != 9 else [rng.choice(("web", "email")), kind],
        }
        where = _where(kind, rng)
        if where is not None:
            offer["where"] = where
        if rng.random() < 0.4:
            offer["cap"] = {"max": rng.choice((1, 1, 2, 3)), "within": rng.choice(("7d", "14d", "30d"))}
        if rng.random() < 0.2:  # a campaign window: from some day of the log, and/or until a later one
            begins = start + rng.randrange(-2, 3) * DAY_MS
            window = {"from": format_ms(begins), "until": format_ms(begins + rng.randrange(1, 5) * DAY_MS)}
            offer["valid"] = rng.choice((window, {"from": window["from"]}, {"until": window["until"]}))
        if rng.random() < 0.5:
            offer["coupon"] = {"discount_percent": rng.choice((5, 10, 15, 20)), "valid_for": rng.choice(("2d", "7d"))}
        if i % 10 == 4:
            offer["recommend"] = {"for": "profile.cart", "top": 3}
        offers.append(offer)
    return Catalogue.model_validate({"offers": offers})


# --------------------------------------------------------------------------------- baseline


def _plain_send(step: DecideStep, catalogue: Catalogue) -> SendStep:
    """The decide step as one plain send: a fixed offer-like template on the channel most candidates use."""
    by_id = {offer.id: offer for offer in catalogue.offers}
    channels = Counter(by_id[oid].channel for oid in catalogue.select(step.decide.offers) if oid in by_id)
    channel = channels.most_common(1)[0][0] if channels else "instore"
    send = SendSpec.model_validate({"channel": channel, "template": BASELINE_TEMPLATE,
                                    "data": STORE_DATA if channel == "instore" else REMOTE_DATA,
                                    "coupon": {"discount_percent": 10, "valid_for": "2d"}})  # fmt: skip
    return SendStep(id=step.id, send=send)


def _plain_steps(steps: Sequence[AnyStep], catalogue: Catalogue) -> tuple[AnyStep, ...]:
    return tuple(_plain_step(step, catalogue) for step in steps)


def _plain_step(step: AnyStep, catalogue: Catalogue) -> AnyStep:
    if isinstance(step, DecideStep):
        return _plain_send(step, catalogue)
    if isinstance(step, SendStep):
        return step.model_copy(update={"send": step.send.model_copy(update={"recommend": None})})
    if isinstance(step, WaitForStep):
        return step.model_copy(update={"on_event": _plain_steps(step.on_event, catalogue),
                                       "on_timeout": _plain_steps(step.on_timeout, catalogue)})  # fmt: skip
    if isinstance(step, IfStep):
        return step.model_copy(update={"then": _plain_steps(step.then, catalogue),
                                       "else_": _plain_steps(step.else_, catalogue)})  # fmt: skip
    if isinstance(step, SplitStep):
        arms = tuple(arm.model_copy(update={"steps": _plain_steps(arm.steps, catalogue)}) for arm in step.split)
        return step.model_copy(update={"split": arms})
    return step


def baseline(journeys: Sequence[Journey], catalogue: Catalogue) -> list[Journey]:
    """The journeys without next best action: each `decide` a plain send, no `recommend` anywhere."""
    return [journey.model_copy(update={"steps": _plain_steps(journey.steps, catalogue)}) for journey in journeys]


# --------------------------------------------------------------------------------- counts


def nba_counts(result: Result) -> dict[str, Any]:
    """Decisions (with a pick, candidates weighed, explored), offer and baseline sends, recommended items."""
    decided = [record for record in result.audit if record["kind"] == "decided"]
    offer_sends = [action for action in result.actions if "offer" in action]
    sources: Counter[str] = Counter()
    recommending = 0
    for action in result.actions:
        items = action["data"].get("recommended") if isinstance(action["data"], dict) else None
        if items is not None:
            recommending += 1
            sources.update(item["source"] for item in items)
    return {
        "decided": len(decided),
        "picked": sum(1 for record in decided if record["picked"]),
        "explored": sum(1 for record in decided if record["explore"]),
        "candidates": sum(len(record["candidates"]) for record in decided) / len(decided) if decided else 0.0,
        "eligible": sum(sum(1 for c in record["candidates"] if "out" not in c) for record in decided) / len(decided)
        if decided else 0.0,
        "offer_sends": len(offer_sends),
        "offers_sent": len({action["offer"] for action in offer_sends}),
        "baseline_sends": sum(1 for action in result.actions if action["template"] == BASELINE_TEMPLATE),
        "recommending": recommending,
        "sources": sources,
    }
