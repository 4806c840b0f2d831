"""Time as the contract writes it (RFC 3339, `1h30m`, `10:00`) and as the engine counts it (epoch ms).

The engine works on integer milliseconds so that comparisons at a timer's due time are exact.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_CLOCK = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")

NEVER = -(2**62)  # before any event time (epoch ms)

DURATION_HELP = "use a whole number followed by s, m, h or d, e.g. 45s, 30m, 2h, 7d or 1h30m"


def parse_duration_ms(text: str) -> int:
    """`1h30m` -> 5_400_000. Raises ValueError with words an ops person understands."""
    match = _DURATION.fullmatch(text.strip()) if isinstance(text, str) else None
    if not match or not any(match.groups()):
        raise ValueError(f"bad duration {text!r}: {DURATION_HELP}")
    days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return (((days * 24 + hours) * 60 + minutes) * 60 + seconds) * 1000


def parse_clock(value: str | int) -> tuple[int, int]:
    """`"10:00"` -> (10, 0). YAML 1.1 reads an unquoted 10:00 as the base-60 integer 600; accept that too."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
        return divmod(value, 60)
    match = _CLOCK.fullmatch(value.strip()) if isinstance(value, str) else None
    if not match:
        shown = f"{value // 60}:{value % 60:02d}" if isinstance(value, int) else value  # undo YAML's base 60
        raise ValueError(f'bad time of day {shown!r}: use HH:MM on a 24-hour clock, e.g. "08:30"')
    return int(match.group(1)), int(match.group(2))


def parse_rfc3339(text: str) -> datetime:
    """An RFC 3339 timestamp that must carry its offset; naive times are refused, not guessed."""
    try:
        parsed = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise ValueError(f"not an RFC 3339 time: {text!r}") from None
    if parsed.tzinfo is None:
        raise ValueError(f"time {text!r} has no UTC offset: add Z or +01:00")
    return parsed


def to_ms(moment: datetime) -> int:
    return (moment - _EPOCH) // _MS


def from_ms(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


@lru_cache(maxsize=4096)
def _day(days: int) -> str:
    return (_EPOCH + timedelta(days=days)).strftime("%Y-%m-%dT")


def format_ms(ms: int) -> str:
    """Epoch ms -> `2026-03-02T10:30:00Z` (milliseconds only when there are any). On the hot path: no strftime."""
    days, rest = divmod(ms, 86_400_000)
    seconds, millis = divmod(rest, 1000)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    if millis:
        return f"{_day(days)}{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}Z"
    return f"{_day(days)}{hours:02d}:{minutes:02d}:{seconds:02d}Z"
