"""The value types journeys, the policy and offers share: durations, times, percentages, conditions, paths, channels,
coupons, templated data. Each validator raises ValueError with the sentence an ops person should read."""

from __future__ import annotations

import zoneinfo
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from orchestrator.contract.conditions import compile_condition, compile_path
from orchestrator.contract.events import CHANNEL_PATTERN
from orchestrator.contract.templates import check_data, check_text
from orchestrator.timefmt import parse_clock, parse_duration_ms, parse_rfc3339, to_ms

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _duration(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError(f"bad duration {value!r}: add a unit, e.g. {value}s, {value}m, {value}h or {value}d")
    return parse_duration_ms(value)


def _offset(value: Any) -> int:
    """A signed duration: `-1d`, `2h`, `+30m`."""
    text = str(value).strip() if isinstance(value, str) else value
    if isinstance(text, str) and text[:1] in "+-" and text[1:]:
        sign = -1 if text[0] == "-" else 1
        return sign * _duration(text[1:])
    if text == 0:
        return 0
    return _duration(text)


def _condition(value: Any) -> dict[str, Any]:
    compile_condition(value)
    return dict(value)


def _clock(value: Any) -> str:
    hour, minute = parse_clock(value)
    return f"{hour:02d}:{minute:02d}"


def _timezone(value: Any) -> str:
    try:
        zoneinfo.ZoneInfo(str(value))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}: use an IANA name such as Europe/Rome or UTC") from None
    return str(value)


def _percent(value: Any) -> float:
    text = str(value).strip()
    number = text[:-1] if text.endswith("%") else text
    try:
        share = float(number)
    except ValueError:
        raise ValueError(f"bad percentage {value!r}: write e.g. 10%") from None
    if not 0 <= share <= 100:
        raise ValueError(f"percentage {value!r} must be between 0% and 100%")
    return share


DurationMs = Annotated[int, BeforeValidator(_duration)]
OffsetMs = Annotated[int, BeforeValidator(_offset)]
Condition = Annotated[dict[str, Any], BeforeValidator(_condition)]
Clock = Annotated[str, BeforeValidator(_clock)]


def _moment(value: Any) -> int:
    if isinstance(value, datetime):  # YAML reads an unquoted timestamp itself
        if value.tzinfo is None:
            raise ValueError(f"time {value.isoformat()!r} has no UTC offset: add Z or +01:00")
        return to_ms(value)
    if not isinstance(value, str):
        raise ValueError(f'a time must be RFC 3339 text such as "2026-03-01T00:00:00Z", got {value!r}')
    return to_ms(parse_rfc3339(value))


def _date(value: Any) -> str:
    if isinstance(value, date) and not isinstance(value, datetime):  # YAML reads an unquoted date itself
        return value.isoformat()
    try:
        return date.fromisoformat(str(value)).isoformat() if len(str(value)) == 10 else _bad_date(value)
    except ValueError:
        return _bad_date(value)


def _bad_date(value: Any) -> str:
    raise ValueError(f'bad date {value!r}: write YYYY-MM-DD, e.g. "2026-11-27"')


Moment = Annotated[int, BeforeValidator(_moment)]  # an instant, RFC 3339 with an offset: epoch ms
LocalDate = Annotated[str, BeforeValidator(_date)]  # a calendar date, YYYY-MM-DD
Channel = Annotated[str, Field(pattern=CHANNEL_PATTERN)]
Percent = Annotated[float, BeforeValidator(_percent)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Coupon(_Model):
    discount_percent: int | float = Field(gt=0, le=100)
    valid_for: DurationMs


def _path(value: Any) -> str:
    compile_path(value)
    return str(value)


PathText = Annotated[str, BeforeValidator(_path)]


class Recommend(_Model):
    """Complementary products for the items at `for` (a list of objects with `sku`, or of skus)."""

    for_: PathText = Field(alias="for")
    top: int = Field(default=3, ge=1, le=50)


Data = Annotated[dict[str, Any], AfterValidator(check_data)]  # a send's or an offer's `data`, checked as a template
TemplateName = Annotated[str, Field(min_length=1), AfterValidator(check_text)]  # may use {{ path }} and filters


def _some_days(value: tuple[str, ...]) -> tuple[str, ...]:
    if not value:
        raise ValueError("days must name at least one day (mon..sun), or be left out for every day")
    return value


Days = Annotated[tuple[Day, ...], AfterValidator(_some_days)]
