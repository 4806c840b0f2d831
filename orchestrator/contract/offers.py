"""The offer catalogue, `offers.yaml` in the journeys folder: what a `decide` step chooses among.

Frozen pydantic models like the journeys'; the loader adds file and line to every message.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, field_validator, model_validator

from orchestrator.contract.values import (
    Channel,
    Condition,
    Coupon,
    Data,
    DurationMs,
    Moment,
    PathText,
    Recommend,
    TemplateName,
    _Model,
)

OFFER_ID = re.compile(r"[a-z0-9-]+")


class Score(_Model):
    """`base + sum(weight * value)`; a missing or non-numeric value counts 0."""

    base: float = 0.0
    weights: dict[PathText, float] = Field(default_factory=dict)


class Cap(_Model):
    max: int = Field(ge=1, le=100)
    within: DurationMs


class Valid(_Model):
    from_: Moment | None = Field(default=None, alias="from")
    until: Moment | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Valid:
        if self.from_ is not None and self.until is not None and self.until <= self.from_:
            raise ValueError("valid.until must be later than valid.from")
        return self


def _score(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError(f"score must be a number or {{base: N, weights: {{PATH: N}}}}, got {value!r}")
    if isinstance(value, int | float):
        return {"base": value}
    return value


class Offer(_Model):
    id: str = Field(min_length=1, max_length=64)
    channel: Channel
    template: TemplateName
    fallback: tuple[Channel, ...] = ()
    where: Condition | None = None
    score: Annotated[Score, BeforeValidator(_score)] = Score()
    priority: int = Field(default=50, ge=0, le=100)
    cap: Cap | None = None
    valid: Valid | None = None
    coupon: Coupon | None = None
    data: Data = Field(default_factory=dict)
    recommend: Recommend | None = None
    tags: tuple[str, ...] = ()

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not OFFER_ID.fullmatch(value):
            raise ValueError(f"bad offer id {value!r}: use lower-case letters, digits and dashes")
        return value


class Catalogue(_Model):
    """The offers, in file order (ids are unique: the loader checks it on the file as written)."""

    offers: tuple[Offer, ...] = ()

    def select(self, offers: tuple[str, ...] | Any) -> tuple[str, ...]:
        """A decide step's candidates in catalogue order: the ids it names, or every offer with one of its tags."""
        if isinstance(offers, tuple):
            return tuple(dict.fromkeys(offers))
        tags = set(offers.tags)
        return tuple(offer.id for offer in self.offers if tags & set(offer.tags))
