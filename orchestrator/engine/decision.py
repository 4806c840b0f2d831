"""Next best action: which of a `decide` step's offers a customer is eligible for, how they rank, which are picked.

Eligibility, at the step's time, in this order (an offer is out for the first reason that fails): the `valid`
window, `where`, the cap (this offer's earlier sends to this customer, from any journey), and a channel the
customer allows (the offer's, then its fallback, under the policy's consent rules). Ranking: score (higher
first), then priority (higher first), then id. Exploring customers (a stable hash of journey, step and customer
key under the `explore` share) get a uniformly chosen eligible offer (a second stable hash) in first place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from orchestrator.contract.conditions import Getter, Predicate, Scope, compile_condition, compile_path
from orchestrator.contract.offers import Catalogue, Offer
from orchestrator.contract.templates import Render, Text, compile_template, compile_text
from orchestrator.engine.ids import unit_interval
from orchestrator.engine.policy import remember, within

OutReason = Literal["not_valid", "not_eligible", "capped", "no_consent"]
SEND_MEMORY_MS = 30 * 24 * 3600 * 1000  # an uncapped offer's sends are kept this long (a cap added later sees them)
SEND_MEMORY = 100  # at most this many sends remembered per offer and customer


@dataclass(frozen=True, slots=True)
class CompiledOffer:
    spec: Offer
    test: Predicate | None
    base: float
    weights: tuple[tuple[Getter, float], ...]
    render: Render
    template: Text

    def score(self, scope: Scope) -> float:
        total = self.base
        for get, weight in self.weights:
            value = get(scope)
            if isinstance(value, int | float) and not isinstance(value, bool):
                total += weight * value
        return total


def compile_offers(catalogue: Catalogue, segments: Mapping[str, Predicate] | None = None) -> dict[str, CompiledOffer]:
    return {
        offer.id: CompiledOffer(
            offer,
            compile_condition(offer.where, segments or {}) if offer.where else None,
            offer.score.base,
            tuple((compile_path(path), weight) for path, weight in offer.score.weights.items()),
            compile_template(offer.data),
            compile_text(offer.template),
        )
        for offer in catalogue.offers
    }


@dataclass(frozen=True, slots=True)
class Candidate:
    offer: str
    score: float | None = None  # eligible ones
    out: OutReason | None = None  # the others

    def record(self) -> dict[str, Any]:
        if self.out is not None:
            return {"offer": self.offer, "out": self.out}
        return {"offer": self.offer, "score": self.score}


def eligibility(
    offer: CompiledOffer,
    scope: Scope,
    now: int,
    earlier_sends: list[int],
    allowed: Callable[[str], bool],
) -> OutReason | None:
    """Why `offer` is out for this customer at `now`, or None when it is eligible."""
    spec = offer.spec
    valid = spec.valid
    if valid is not None and ((valid.from_ is not None and now < valid.from_) or
                              (valid.until is not None and now >= valid.until)):  # fmt: skip
        return "not_valid"
    if offer.test is not None and not offer.test(scope):
        return "not_eligible"
    if spec.cap is not None and within(earlier_sends, now, spec.cap.within) >= spec.cap.max:
        return "capped"
    if not any(allowed(channel) for channel in (spec.channel, *spec.fallback)):
        return "no_consent"
    return None


def rank(
    offers: Mapping[str, CompiledOffer],
    candidates: Iterable[str],
    scope: Scope,
    now: int,
    sends: Mapping[str, list[int]],
    allowed: Callable[[str], bool],
) -> list[Candidate]:
    """Every candidate, the eligible ones best first, then those out in the step's order."""
    eligible, out = [], []
    for offer_id in candidates:
        offer = offers.get(offer_id)
        if offer is None:
            continue  # a retired journey version naming an offer the catalogue no longer has
        reason = eligibility(offer, scope, now, sends.get(offer_id, []), allowed)
        if reason is None:
            eligible.append(Candidate(offer_id, round(offer.score(scope), 6)))
        else:
            out.append(Candidate(offer_id, out=reason))
    eligible.sort(key=lambda c: (-(c.score or 0.0), -offers[c.offer].spec.priority, c.offer))
    return eligible + out


def choose(ranked: list[Candidate], pick: int, explore: float, journey: str, step: str, customer: str
           ) -> tuple[list[str], bool]:  # fmt: skip
    """The picked offer ids, best first, and whether this customer explores."""
    eligible = [c.offer for c in ranked if c.out is None]
    if not eligible:
        return [], False
    explores = explore > 0 and unit_interval("explore", journey, step, customer) * 100 < explore
    if explores:
        first = eligible[int(unit_interval("explore-pick", journey, step, customer) * len(eligible))]
        eligible.remove(first)
        eligible.insert(0, first)
    return eligible[:pick], explores


def remember_send(sends: dict[str, list[int]], offer: Offer, now: int) -> None:
    """One more send of `offer`: what its cap counts, bounded in time and number."""
    window = max(offer.cap.within if offer.cap else 0, SEND_MEMORY_MS)
    remember(sends.setdefault(offer.id, []), now, now, window, SEND_MEMORY)
