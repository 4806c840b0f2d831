"""Journey and contact-policy YAML as frozen pydantic models.

Steps are a union discriminated by the one key that names the step type (`wait`, `send`, ...).
Field validators raise ValueError with the sentence an ops person should read; the loader adds
the file and line.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Discriminator, Field, Tag, field_validator, model_validator

from orchestrator.contract.conditions import condition_paths
from orchestrator.contract.errors import shown
from orchestrator.contract.schedules import MAX_SPREAD_RECURRING, Schedule
from orchestrator.contract.values import (
    DAYS,
    Channel,
    Clock,
    Condition,
    Coupon,
    Data,
    Day,
    Days,
    DurationMs,
    OffsetMs,
    PathText,
    Percent,
    Recommend,
    TemplateName,
    _duration,
    _Model,
    _timezone,
)

STEP_TYPES = ("wait", "wait_until", "wait_for", "send", "decide", "if", "split", "exit")
JOURNEY_ID = re.compile(r"[a-z0-9][a-z0-9-]*")

class SendSpec(_Model):
    channel: Channel
    template: TemplateName
    data: Data = Field(default_factory=dict)
    fallback: tuple[Channel, ...] = ()
    coupon: Coupon | None = None
    recommend: Recommend | None = None


class WaitUntilSpec(_Model):
    """Three forms: a local time of day (`time`, `days`); the time at a path (`at`, `offset`); the next yearly
    recurrence of a date at a path (`anniversary`, `time`, `offset`)."""

    time: Clock | None = None
    days: Days | None = None
    at: PathText | None = None
    anniversary: PathText | None = None
    offset: OffsetMs = 0

    @model_validator(mode="after")
    def _one_form(self) -> WaitUntilSpec:
        if self.at is not None and self.anniversary is not None:
            raise ValueError("wait_until takes at or anniversary, not both")
        if self.at is not None:
            if self.time is not None or self.days is not None:
                raise ValueError("wait_until with at waits for the time at that path: time and days do not apply")
        elif self.anniversary is not None:
            if self.days is not None:
                raise ValueError("wait_until with anniversary recurs once a year: days does not apply")
        else:
            if self.time is None:
                raise ValueError('wait_until needs time (e.g. {time: "10:00"}), at (a path to a time) or anniversary '
                                 "(a path to a date)")  # fmt: skip
            if self.offset:
                raise ValueError("offset applies to wait_until with at or anniversary, not to a time of day")
        return self

    @property
    def clock(self) -> str:
        return self.time or "00:00"

    @property
    def weekdays(self) -> tuple[Day, ...]:
        return self.days or DAYS


class WaitForSpec(_Model):
    event: str = Field(min_length=1)
    timeout: DurationMs
    where: Condition | None = None


class _Step(_Model):
    id: str | None = Field(default=None, min_length=1)


class WaitStep(_Step):
    wait: DurationMs


class WaitUntilStep(_Step):
    wait_until: WaitUntilSpec


class SendStep(_Step):
    send: SendSpec


class WaitForStep(_Step):
    wait_for: WaitForSpec
    on_event: tuple[Step, ...] = ()
    on_timeout: tuple[Step, ...] = ()


class OfferTags(_Model):
    tags: tuple[str, ...] = Field(min_length=1)


_OFFERS_HELP = "write a list of offer ids such as [cart-10, free-gift], or {tags: [store]}"


def _offer_choice(value: Any) -> Any:
    """A decide step's `offers`, read here rather than as pydantic's union of a list and a mapping: its messages
    would name both branches in pydantic's words (`offers.tuple[str, ...]: ...`, `offers.OfferTags.tags: ...`)."""
    if isinstance(value, OfferTags):
        return value
    if isinstance(value, list | tuple):
        if not value:
            raise ValueError(f"offers must name at least one offer id: {_OFFERS_HELP}")
        bad = [item for item in value if not isinstance(item, str) or not item]
        if bad:
            raise ValueError(f"{shown(bad[0])} is not an offer id: {_OFFERS_HELP}")
        return tuple(value)
    if isinstance(value, dict):
        other = [str(key) for key in value if key != "tags"]
        if other:
            raise ValueError(f"unknown field {other[0]!r}: {_OFFERS_HELP}")
        tags = value.get("tags")
        if not isinstance(tags, list | tuple) or not tags or not all(isinstance(t, str) and t for t in tags):
            raise ValueError(f"tags must list at least one tag, e.g. {{tags: [store]}}, got {shown(tags)}")
        return OfferTags(tags=tuple(tags))
    raise ValueError(f"offers: {_OFFERS_HELP}; got {shown(value)}")


class DecideSpec(_Model):
    offers: Annotated[tuple[str, ...] | OfferTags, BeforeValidator(_offer_choice)] = Field(
        description="offer ids, or {tags: [...]}"
    )
    pick: int = Field(default=1, ge=1)
    explore: Percent = 0.0


class DecideStep(_Step):
    decide: DecideSpec
    on_none: tuple[Step, ...] = ()


class IfStep(_Step):
    if_: Condition = Field(alias="if")
    then: tuple[Step, ...] = ()
    else_: tuple[Step, ...] = Field(default=(), alias="else")

    @model_validator(mode="after")
    def _some_branch(self) -> IfStep:
        if not {"then", "else_"} & self.model_fields_set:
            raise ValueError("an if needs then, else or both: the steps to run when the condition holds or not")
        return self


class SplitArm(_Model):
    weight: float = Field(gt=0, description="relative weight; must be positive")
    steps: tuple[Step, ...] = ()


class SplitStep(_Step):
    split: tuple[SplitArm, ...] = Field(min_length=1)


class ExitStep(_Step):
    exit: Literal[True] = True


class UnknownStep(_Step):
    """Never valid: stands in the union so that a step of no known type gets a useful message."""

    @model_validator(mode="before")
    @classmethod
    def _explain(cls, value: Any) -> Any:
        if isinstance(value, dict):
            kinds = [k for k in value if k in STEP_TYPES]
            if len(kinds) > 1:
                raise ValueError(f"a step has exactly one type, this one has {' and '.join(kinds)}")
            other = [str(k) for k in value if k != "id"]
            name = other[0] if other else "(none)"
            raise ValueError(f"unknown step type {name!r}: use one of {', '.join(STEP_TYPES)}")
        raise ValueError(f"a step must be a mapping such as {{wait: 30m}} or the word exit, got {shown(value)}")


def _step_kind(value: Any) -> str:
    if value == "exit":
        return "exit"
    if isinstance(value, dict):
        kinds = [k for k in value if k in STEP_TYPES]
        if len(kinds) == 1:
            return str(kinds[0])
    elif isinstance(value, BaseModel):
        for kind, model in _STEP_MODELS.items():
            if isinstance(value, model):
                return kind
    return "unknown"


def _exit_shorthand(value: Any) -> Any:
    if value == "exit":
        return {"exit": True}
    if isinstance(value, dict) and "exit" in value and value["exit"] is None:
        return {**value, "exit": True}
    return value


Step = Annotated[
    Annotated[WaitStep, Tag("wait")]
    | Annotated[WaitUntilStep, Tag("wait_until")]
    | Annotated[WaitForStep, Tag("wait_for")]
    | Annotated[SendStep, Tag("send")]
    | Annotated[DecideStep, Tag("decide")]
    | Annotated[IfStep, Tag("if")]
    | Annotated[SplitStep, Tag("split")]
    | Annotated[Annotated[ExitStep, BeforeValidator(_exit_shorthand)], Tag("exit")]
    | Annotated[UnknownStep, Tag("unknown")],
    Discriminator(_step_kind),
]
AnyStep = WaitStep | WaitUntilStep | WaitForStep | SendStep | DecideStep | IfStep | SplitStep | ExitStep | UnknownStep
_STEP_MODELS: dict[str, type[BaseModel]] = {
    "wait": WaitStep, "wait_until": WaitUntilStep, "wait_for": WaitForStep, "send": SendStep,
    "decide": DecideStep, "if": IfStep, "split": SplitStep, "exit": ExitStep,
}  # fmt: skip


class Trigger(_Model):
    """Exactly one of: `event` (its type), `inactive_for` (no event of the customer's for that long), `becomes`
    (a condition that an event made true) or `schedule` (a broadcast to `audience`: contract/schedules.py). `where`
    is checked when the trigger fires."""

    event: str | None = Field(default=None, min_length=1)
    inactive_for: DurationMs | None = None
    becomes: Condition | None = None
    schedule: Schedule | None = None
    audience: str | None = Field(default=None, pattern=r"^[a-z0-9-]+$")  # a segment name, or all
    spread: DurationMs = 0
    where: Condition | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Trigger:
        kinds = [k for k in ("event", "inactive_for", "becomes", "schedule") if getattr(self, k) is not None]
        if len(kinds) != 1:
            have = " and ".join(kinds) if kinds else "none"
            raise ValueError(f"a trigger has exactly one of event, inactive_for, becomes or schedule; this one has "
                             f"{have}")  # fmt: skip
        if self.schedule is None:
            if self.audience is not None or self.spread:
                raise ValueError("audience and spread belong to a schedule trigger")
        elif self.audience is None:
            raise ValueError("a schedule trigger needs audience: a segment of segments.yaml, or all")
        elif self.schedule.form == "recurring" and self.spread > MAX_SPREAD_RECURRING:
            raise ValueError("a recurring schedule's spread is at most 23h (an occurrence ends before the next)")
        if (self.inactive_for is not None or self.schedule is not None) and self.where is not None:
            wrong = [p for p in condition_paths(self.where) if not p.startswith("profile.")]
            if wrong:
                kind = "an inactive_for" if self.inactive_for is not None else "a schedule"
                raise ValueError(f"{kind} trigger has no event: its where reads only profile. paths, "
                                 f"not {wrong[0]!r}")  # fmt: skip
        return self


class Goal(_Model):
    event: str = Field(min_length=1)
    within: DurationMs


def _reentry(value: Any) -> str | int:
    if value in ("never", "always"):
        return str(value)
    try:
        return _duration(value)
    except ValueError:
        raise ValueError(f"bad reentry {value!r}: use never, always or a cool-down such as 7d") from None


class MaxSends(_Model):
    max: int = Field(ge=1)
    within: DurationMs


class SendWindow(_Model):
    start: Clock
    end: Clock
    days: Days = DAYS


Category = Literal["marketing", "transactional"]


class Journey(_Model):
    id: str = Field(min_length=1, max_length=64)
    name: str | None = None
    description: str | None = None
    version: int = Field(default=1, ge=1)
    enabled: bool = True
    priority: int = Field(default=50, ge=0, le=100)
    trigger: Trigger
    reentry: Annotated[str | int, BeforeValidator(_reentry)] = "never"
    exit_on: tuple[str, ...] = ()
    goal: Goal | None = None
    holdout: Percent = 0.0
    category: Category = "marketing"
    max_sends: MaxSends | None = None
    send_window: SendWindow | None = None
    steps: tuple[Step, ...] = Field(min_length=1)

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not JOURNEY_ID.fullmatch(value):
            raise ValueError(f"bad journey id {value!r}: use lower-case letters, digits and dashes")
        return value


class QuietHours(_Model):
    start: Clock
    end: Clock
    channels: tuple[Channel, ...] = ("sms", "push")


class Spacing(_Model):
    min: DurationMs
    channels: tuple[Channel, ...] = ("email", "sms", "push")


class Policy(_Model):
    """Contact policy. Without `journeys/policy.yaml` these defaults hold: consent is required before
    email, SMS or push (privacy by default), no daily cap, no quiet hours."""

    default_timezone: Annotated[str, BeforeValidator(_timezone)] = "UTC"
    consent_required: tuple[Channel, ...] = ("email", "sms", "push")
    max_per_day: dict[Channel, Annotated[int, Field(ge=0)]] = Field(default_factory=dict)
    quiet_hours: QuietHours | None = None
    max_active_journeys: int | None = Field(default=None, ge=1)
    spacing: Spacing | None = None
    global_holdout: Percent = 0.0
