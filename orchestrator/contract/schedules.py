"""A journey's scheduled trigger: a broadcast to an audience at an instant, or at a local time in each customer's
own time zone, once or recurring.

```yaml
trigger:
  schedule: {at: "2026-11-27T10:00:00Z"}       # one instant, the same for everyone
  # or {date: "2026-11-27", time: "10:00"}     # 10:00 in each customer's own time zone
  # or {time: "09:00", days: [mon], from: "2026-11-02", until: "2026-12-28"}   # recurring, local time
  audience: vip                                # a segment of segments.yaml, or all
  where: {profile.traits.tier: gold}           # optional, profile. only
  spread: 2h                                   # optional: entries spread evenly over [0, 2h)
```
The engine's side (occurrences, entry instants, spread) is engine/schedule.py.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from orchestrator.contract.values import Clock, Days, LocalDate, Moment, _Model

Form = Literal["at", "date", "recurring"]
DAY_MS = 86_400_000
MAX_SPREAD_RECURRING = DAY_MS - 3_600_000  # 23h: one occurrence's entries end before the next day's begin


class Schedule(_Model):
    at: Moment | None = None
    date: LocalDate | None = None
    time: Clock | None = None
    days: Days | None = None
    from_: LocalDate | None = Field(default=None, alias="from")
    until: LocalDate | None = None

    @model_validator(mode="after")
    def _one_form(self) -> Schedule:
        if self.at is not None:
            extra = [name for name in ("date", "time", "days", "from_", "until") if getattr(self, name) is not None]
            if extra:
                raise ValueError(f"schedule with at is one instant for everyone: {extra[0].rstrip('_')} does not "
                                 f"apply")  # fmt: skip
        elif self.date is not None:
            if self.time is None:
                raise ValueError('schedule with date needs time, e.g. {date: "2026-11-27", time: "10:00"}')
            if self.days is not None or self.from_ is not None or self.until is not None:
                raise ValueError("schedule with date happens once: days, from and until apply to a recurring one "
                                 "(time without date)")  # fmt: skip
        elif self.time is None:
            raise ValueError('a schedule needs at (an instant), date and time, or time (recurring, with days, from '
                             'and until optional), e.g. {time: "09:00", days: [mon]}')  # fmt: skip
        if self.from_ is not None and self.until is not None and self.until < self.from_:
            raise ValueError(f"schedule until {self.until} is before from {self.from_}")
        return self

    @property
    def form(self) -> Form:
        if self.at is not None:
            return "at"
        return "date" if self.date is not None else "recurring"
