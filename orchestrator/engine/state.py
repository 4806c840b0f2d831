"""Per-customer state as plain slotted dataclasses, with a JSON-ready form carrying a schema version.

The engine mutates the state it is given and hands it back; callers that need the old one copy it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple

SCHEMA_VERSION = 5  # 2: identifiers; 3: offer sends, offers of a run; 4: inactivity triggers, a journey's sends;
# 5: scheduled entries
SEEN_EVENT_IDS = 1000  # per customer; an older duplicate than this is processed again

# What a waiting run waits for.
WAIT = "wait"  # a `wait` or `wait_until` step: resume at `due`
WAIT_FOR = "wait_for"  # an event, or its timeout at `due`
DEFER = "defer"  # a send held back by quiet hours or a send window until `due`
INACTIVE = "i"  # the token prefix of an `inactive_for` trigger's timer (the journey is the timer's)


def new_profile() -> dict[str, Any]:
    return {
        "channels": [],
        "events": {},
        "traits": {},
        "cart": [],
        "cart_value": 0,
        "lifetime_value": 0,
        "orders": 0,
        "consent": {},
    }


@dataclass(slots=True)
class Wait:
    kind: str
    step: str  # path of the step that waits
    due: int  # epoch ms
    token: str  # matches the Timer that resumes it; a stale timer finds another token and does nothing


@dataclass(slots=True)
class Run:
    journey: str
    version: int
    number: int  # 1 for the customer's first run of this journey, 2 for the next...
    entered: int
    entry: dict[str, Any]  # the event that made the customer enter (`entry.` paths)
    cause: dict[str, Any]  # the event that last moved the run (`event.` paths when a timer resumes it)
    holdout: bool
    wait: Wait | None = None
    occurrence: str = ""  # a scheduled entry's occurrence (its records say it: report's per-occurrence figures)


@dataclass(slots=True)
class History:
    """What is remembered of a journey after its runs end: re-entry, conversion."""

    runs: int = 0
    version: int = 0
    entered: int = 0
    exited: int | None = None
    holdout: bool = False
    converted: bool = False
    path: list[str] = field(default_factory=list)  # channels from entry until conversion (kpis: cross-channel)
    offers: list[list[Any]] = field(default_factory=list)  # [offer id, explored] sent in the latest run
    sends: list[int] = field(default_factory=list)  # when this journey sent to the customer (its `max_sends`)
    occurrence: str = ""  # the latest run's, when a schedule started it


@dataclass(slots=True, frozen=True, order=True, init=False)
class Timer:
    """A request to call `Engine.on_timer` at `due` for this customer; stale ones are harmless."""

    due: int
    customer: str
    journey: str
    token: str

    def __init__(self, due: int, customer: str, journey: str, token: str) -> None:
        """The dataclass's own without object.__setattr__ per field (a frozen one's way): its slots' setters, a third
        cheaper by timeit; a replay makes a Timer for every wait and firing. Still frozen: assignment raises."""
        set_ = _TIMER_SLOTS
        set_[0](self, due)
        set_[1](self, customer)
        set_[2](self, journey)
        set_[3](self, token)


_TIMER_SLOTS = tuple(getattr(Timer, field.name).__set__ for field in fields(Timer))


class Armed(NamedTuple):
    """An `inactive_for` trigger: its timer (due, token) and when the customer enters if no event comes first.

    An event only moves `enters` on; the timer, when it fires before that, is set again for `enters`. So a busy
    customer has one pending timer per such journey, not one per event."""

    due: int
    token: str
    enters: int


class Planned(NamedTuple):
    """A scheduled journey's next entry for this customer (engine/schedule.py): its timer (due, token) and which
    occurrence it is; an empty token: the schedule has no more entries for them."""

    due: int
    token: str
    occurrence: str


@dataclass(slots=True)
class CustomerState:
    key: str
    profile: dict[str, Any] = field(default_factory=new_profile)
    runs: dict[str, Run] = field(default_factory=dict)
    history: dict[str, History] = field(default_factory=dict)
    sends: list[tuple[int, str]] = field(default_factory=list)  # (at, channel) in the last 24 h
    seen: dict[str, None] = field(default_factory=dict)  # recent event ids, oldest first
    timer_seq: int = 0
    # Identifier keys seen on this customer's events -> when last seen: rebuilds the Redis graph from Kafka.
    identifiers: dict[str, int] = field(default_factory=dict)
    offer_sends: dict[str, list[int]] = field(default_factory=dict)  # offer id -> when it was sent (caps)
    armed: dict[str, Armed] = field(default_factory=dict)  # `inactive_for` journeys waiting for silence
    planned: dict[str, Planned] = field(default_factory=dict)  # scheduled journeys: the next entry of each

    def pending_timers(self) -> list[Timer]:
        """Timers this state still waits on, in due order: what a recovering worker re-indexes."""
        return sorted(self.due_timers(None))

    def timer_tokens(self) -> dict[str, tuple[int, str]]:
        """token -> (due, journey) of every pending timer: cheaper than `Timer`s, for a step's before and after."""
        tokens = {wait.token: (wait.due, run.journey) for run in self.runs.values() if (wait := run.wait) is not None}
        for jid, armed in self.armed.items():
            tokens[armed.token] = (armed.due, jid)
        for jid, planned in self.planned.items():
            if planned.token:  # else the schedule has no more entries for this customer
                tokens[planned.token] = (planned.due, jid)
        return tokens

    def due_timers(self, now: int | None) -> list[Timer]:
        """The pending timers due at or before `now` (None: all), in no particular order; on the hot path."""
        key = self.key
        timers = [Timer(wait.due, key, run.journey, wait.token) for run in self.runs.values()
                  if (wait := run.wait) is not None and (now is None or wait.due <= now)]  # fmt: skip
        if self.armed:
            timers += (Timer(armed.due, key, jid, armed.token) for jid, armed in self.armed.items()
                       if now is None or armed.due <= now)  # fmt: skip
        if self.planned:
            timers += (Timer(planned.due, key, jid, planned.token) for jid, planned in self.planned.items()
                       if planned.token and (now is None or planned.due <= now))  # fmt: skip
        return timers

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": SCHEMA_VERSION,
            "key": self.key,
            "profile": self.profile,
            "runs": {
                j: {
                    "journey": r.journey, "version": r.version, "number": r.number, "entered": r.entered,
                    "entry": r.entry, "cause": r.cause, "holdout": r.holdout,
                    "wait": None if r.wait is None else [r.wait.kind, r.wait.step, r.wait.due, r.wait.token],
                    **({"occurrence": r.occurrence} if r.occurrence else {}),
                }
                for j, r in self.runs.items()
            },
            "history": {
                j: [h.runs, h.version, h.entered, h.exited, h.holdout, h.converted, h.path, h.offers, h.sends,
                    *([h.occurrence] if h.occurrence else [])]
                for j, h in self.history.items()
            },
            "sends": [list(s) for s in self.sends],
            "seen": list(self.seen),
            "timer_seq": self.timer_seq,
            "identifiers": self.identifiers,
            "offer_sends": self.offer_sends,
            "armed": {j: list(a) for j, a in self.armed.items()},
            **({"planned": {j: list(p) for j, p in self.planned.items()}} if self.planned else {}),
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CustomerState:
        if data.get("v") not in (1, 2, 3, 4, SCHEMA_VERSION):
            raise ValueError(f"customer state has schema version {data.get('v')!r}, expected {SCHEMA_VERSION}")
        runs = {}
        for j, r in data["runs"].items():
            wait = Wait(*r["wait"]) if r["wait"] is not None else None
            runs[j] = Run(r["journey"], r["version"], r["number"], r["entered"], r["entry"], r["cause"], r["holdout"],
                          wait, r.get("occurrence", ""))  # fmt: skip
        return cls(
            key=data["key"],
            profile=data["profile"],
            runs=runs,
            history={j: History(*h) for j, h in data["history"].items()},
            sends=[(s[0], s[1]) for s in data["sends"]],
            seen=dict.fromkeys(data["seen"]),
            timer_seq=data["timer_seq"],
            identifiers=data.get("identifiers", {}),
            offer_sends=data.get("offer_sends", {}),
            armed={j: Armed(*a) for j, a in data.get("armed", {}).items()},
            planned={j: Planned(*p) for j, p in data.get("planned", {}).items()},
        )
