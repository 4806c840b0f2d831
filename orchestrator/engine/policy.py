"""The contact policy: holdout, consent with fallbacks, quiet hours, daily caps, in that order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from orchestrator.contract.journeys import Policy
from orchestrator.engine.localtime import customer_zone, quiet_until
from orchestrator.timefmt import parse_clock

DAY_MS = 24 * 3600 * 1000

SEND = "send"
DEFER = "defer"
SUPPRESS = "suppress"


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: str  # SEND, DEFER or SUPPRESS
    channel: str  # the channel chosen (or the one asked for, when suppressed for holdout/consent)
    reason: str | None = None  # holdout, no_consent, frequency_cap
    until: int | None = None  # DEFER: when the quiet window ends


class Sendable(Protocol):
    """A journey's `send` or a catalogue offer: what the policy needs of either."""

    @property
    def channel(self) -> str: ...
    @property
    def fallback(self) -> tuple[str, ...]: ...


class ContactPolicy:
    """The loaded `Policy`, pre-digested for the hot path."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.consent_required = frozenset(policy.consent_required)
        self.caps = dict(policy.max_per_day)
        quiet = policy.quiet_hours
        self.quiet_channels = frozenset(quiet.channels) if quiet else frozenset()
        self.quiet_window = (parse_clock(quiet.start), parse_clock(quiet.end)) if quiet else None

    def allowed(self, profile: dict[str, Any], channel: str) -> bool:
        return channel not in self.consent_required or profile["consent"].get(channel) is True

    def decide(
        self, spec: Sendable, profile: dict[str, Any], sends: list[tuple[int, str]], now: int, holdout: bool
    ) -> Decision:
        if holdout:
            return Decision(SUPPRESS, spec.channel, "holdout")
        channel = next((c for c in (spec.channel, *spec.fallback) if self.allowed(profile, c)), None)
        if channel is None:
            return Decision(SUPPRESS, spec.channel, "no_consent")
        if self.quiet_window is not None and channel in self.quiet_channels:
            zone = customer_zone(profile, self.policy.default_timezone)
            until = quiet_until(now, *self.quiet_window, zone)
            if until is not None:
                return Decision(DEFER, channel, "quiet_hours", until)
        cap = self.caps.get(channel)
        if cap is not None:
            since = now - DAY_MS
            if sum(1 for at, c in sends if c == channel and at > since) >= cap:
                return Decision(SUPPRESS, channel, "frequency_cap")
        return Decision(SEND, channel)


def record_send(sends: list[tuple[int, str]], now: int, channel: str) -> None:
    """Remember a send for the rolling 24-hour caps, forgetting what no cap can see any more."""
    since = now - DAY_MS
    if sends and sends[0][0] <= since:
        sends[:] = [s for s in sends if s[0] > since]
    sends.append((now, channel))
