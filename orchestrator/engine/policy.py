"""The contact policy and a journey's own limits, in this order: holdout, global holdout, consent with fallbacks, the
journey's send window, quiet hours, daily caps, the journey's `max_sends`, spacing.

Transactional journeys skip what protects customers from marketing pressure (global holdout, quiet hours, daily caps,
spacing) and are not counted by it; they still need consent and keep their own holdout, window and `max_sends`.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from orchestrator.contract.journeys import Journey, Policy
from orchestrator.contract.values import DAYS
from orchestrator.engine.localtime import quiet_until, window_opens
from orchestrator.timefmt import parse_clock

DAY_MS = 24 * 3600 * 1000

SEND = "send"
DEFER = "defer"
SUPPRESS = "suppress"


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: str  # SEND, DEFER or SUPPRESS
    channel: str  # the channel chosen (or the one asked for, when suppressed for holdout/consent)
    reason: str | None = None  # holdout, global_holdout, no_consent, frequency_cap, journey_cap, spacing; deferred:
    # quiet_hours, send_window
    until: int | None = None  # DEFER: when the quiet window ends or the send window opens


class Sendable(Protocol):
    """A journey's `send` or a catalogue offer: what the policy needs of either."""

    @property
    def channel(self) -> str: ...
    @property
    def fallback(self) -> tuple[str, ...]: ...


Sent = TypeVar("Sent", int, tuple[int, str])  # a remembered send: its time, or (time, channel)
Window = tuple[tuple[int, int], tuple[int, int], frozenset[int]]  # a send window: start, end, weekdays


@dataclass(frozen=True, slots=True)
class Limits:
    """A journey's own rules for sending, compiled."""

    marketing: bool = True
    max_sends: tuple[int, int] | None = None  # (max, within ms)
    window: Window | None = None


def journey_limits(journey: Journey) -> Limits:
    window = journey.send_window
    return Limits(
        marketing=journey.category == "marketing",
        max_sends=None if journey.max_sends is None else (journey.max_sends.max, journey.max_sends.within),
        window=None if window is None else (parse_clock(window.start), parse_clock(window.end),
                                            frozenset(DAYS.index(d) for d in window.days)),
    )  # fmt: skip


def within(times: Iterable[int], now: int, window: int) -> int:
    """The sends that one window of this length could hold together with a send at `now`: those less than `window`
    before it, and also those less than `window` after it. Later sends exist when the customer's clock went back (a
    late event in the worker runs at its own, earlier time after timers of a later time fired); without them a late
    decision could put `max + 1` sends into one window."""
    return sum(1 for at in times if abs(now - at) < window)


@dataclass(frozen=True, slots=True)
class Context:
    """What the policy reads of the customer for one send."""

    profile: dict[str, Any]
    sends: list[tuple[int, str]]  # the customer's marketing sends (at, channel)
    journey_sends: list[int]  # this journey's sends to the customer
    zone: Callable[[], zoneinfo.ZoneInfo]  # asked only when a send window or quiet hours apply
    holdout: bool  # the run is in its journey's holdout
    control: bool  # the customer is in the programme's global holdout


class ContactPolicy:
    """The loaded `Policy`, pre-digested for the hot path."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.consent_required = frozenset(policy.consent_required)
        self.caps = dict(policy.max_per_day)
        quiet = policy.quiet_hours
        self.quiet_channels = frozenset(quiet.channels) if quiet else frozenset()
        self.quiet_window = (parse_clock(quiet.start), parse_clock(quiet.end)) if quiet else None
        spacing = policy.spacing
        self.spacing = (spacing.min, frozenset(spacing.channels)) if spacing else None
        self.remembered = max(DAY_MS, spacing.min if spacing else 0)  # how long `sends` must reach back

    def allowed(self, profile: dict[str, Any], channel: str) -> bool:
        return channel not in self.consent_required or profile["consent"].get(channel) is True

    def decide(self, spec: Sendable, limits: Limits, now: int, ctx: Context) -> Decision:
        marketing = limits.marketing
        if ctx.holdout:
            return Decision(SUPPRESS, spec.channel, "holdout")
        if marketing and ctx.control:
            return Decision(SUPPRESS, spec.channel, "global_holdout")
        channel = next((c for c in (spec.channel, *spec.fallback) if self.allowed(ctx.profile, c)), None)
        if channel is None:
            return Decision(SUPPRESS, spec.channel, "no_consent")
        quiet = self.quiet_window if marketing and channel in self.quiet_channels else None
        if limits.window is not None or quiet is not None:
            reason, until = self._sendable(now, limits.window, quiet, ctx.zone())
            if until is None:
                return Decision(SUPPRESS, channel, "send_window")  # its window never opens outside quiet hours
            if until > now:
                return Decision(DEFER, channel, reason, until)
        cap = self.caps.get(channel) if marketing else None
        if cap is not None and within((at for at, c in ctx.sends if c == channel), now, DAY_MS) >= cap:
            return Decision(SUPPRESS, channel, "frequency_cap")
        if limits.max_sends is not None:
            most, window = limits.max_sends
            if within(ctx.journey_sends, now, window) >= most:
                return Decision(SUPPRESS, channel, "journey_cap")
        if marketing and self.spacing is not None:
            gap, channels = self.spacing
            if channel in channels and any(c in channels and abs(now - at) < gap for at, c in ctx.sends):
                return Decision(SUPPRESS, channel, "spacing")
        return Decision(SEND, channel)

    @staticmethod
    def _sendable(now: int, window: Window | None, quiet: tuple[tuple[int, int], tuple[int, int]] | None,
                  zone: zoneinfo.ZoneInfo) -> tuple[str, int | None]:  # fmt: skip
        """The first time from `now` on that is inside the send window and outside quiet hours (None: there is none
        within two weeks, as when the window lies inside quiet hours), and the reason a send must wait for it."""
        reason, at = "", now
        for _ in range(32):
            opens = None if window is None else window_opens(at, *window, zone)
            if opens is not None:
                reason, at = reason or "send_window", opens
            ends = None if quiet is None else quiet_until(at, *quiet, zone)
            if ends is not None:
                reason, at = reason or "quiet_hours", ends
            if opens is None and ends is None:
                return reason, at
        return reason, None

    def record(self, sends: list[tuple[int, str]], now: int, channel: str) -> None:
        """Remember a marketing send for the daily caps and spacing."""
        remember(sends, (now, channel), now, self.remembered)


def remember(times: list[Sent], item: Sent, now: int, window: int, most: int | None = None) -> None:
    """Append a send (its time, or (time, channel)) to what a limit of this window counts, forgetting what lies two
    windows before `now`: a late decision (its own, earlier time; see `within`) still sees a window back. At most
    `most` are kept."""
    since = now - 2 * window
    if times and _time(times[0]) <= since:
        times[:] = [t for t in times if _time(t) > since]
    times.append(item)
    if most is not None and len(times) > most:
        del times[: len(times) - most]


def _time(item: int | tuple[int, str]) -> int:
    return item if isinstance(item, int) else item[0]
