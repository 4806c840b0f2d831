"""The complementary-products model in the worker, learned as `simulate` learns it (engine/affinity.py).

A recommendation made at event time `t` uses the model of every basket bought before `boundary(t)` (the hour
`t` falls in), on every partition. So that the worker gives the same recommendations as `simulate`:

- Each customers partition writes its purchases' baskets to `<app>.baskets` (one partition: one order that every
  worker reads alike), in the transaction of the step that made them. When the partition has run every record
  before a boundary `h` (its watermark has passed, nothing before `h` is held, no timer before `h` is pending), it
  writes a *seal* "partition p is complete before h" behind them.
- Every worker reads the whole topic (`follow`): baskets wait in their hour; once every customers partition has
  sealed `h`, the model before `h` is complete and is folded (`Models.seal`, the same code `simulate` runs).
- A customers partition runs a record or a timer at `t` only once the model of `boundary(t)` is complete (`cap`):
  for live traffic that holds back only the first moments of each hour; a backlog advances an hour of event time
  per round of seals (about a commit interval plus a mark interval), skipping hours with nothing to run.
- Without any `recommend` in the journeys or the offers nothing waits and no basket is written.

A late record (audited `late`) or a merge that arrives after its partition sealed its hour is learned from the next
version on (its hour is folded again): recommendations made in between did not know it, where `simulate` would have.
Every worker keeps every basket it has read (about 100 bytes each) and reads the whole topic at start.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from orchestrator.engine.affinity import PERIOD_MS, Basket, Models, ModelSnapshot, boundary
from orchestrator.timefmt import NEVER

log = logging.getLogger("orchestrator.worker")
KEPT_SNAPSHOTS = 4  # recent versions kept: decisions on several partitions may be in different hours


def encode_basket(partition: int, basket: Basket) -> bytes:
    return orjson.dumps({"k": "basket", "p": partition, "id": basket.id, "ts": basket.ts, "skus": basket.skus})


Coverage = dict[int, int]  # input partition -> committed offset of the newest mark a customers partition has taken


def encode_seal(partition: int, until: int, coverage: Coverage) -> bytes:
    return orjson.dumps({"k": "seal", "p": partition, "until": until, "input": sorted(coverage.items())})


def _covers(seal: Coverage, mine: Coverage) -> bool:
    return all(seal.get(source, -1) >= offset for source, offset in mine.items())


@dataclass(slots=True)
class Learning:
    """One worker's copy of the model, and the seals it has read and sent.

    Seals can go back: a partition that was caught up (its seal at the wall clock) and receives a backfill of last
    month's log speaks for last month again, as its watermark does (stream/watermark.py). The model then answers for
    last month's hours too: every basket read is kept, and a version before the one folded is folded again from them.
    """

    partitions: int  # customers partitions: each must seal an hour before it is complete
    active: bool  # some journey or offer recommends: otherwise nothing is learned and nothing waits
    models: Models = field(default_factory=Models)
    baskets: dict[str, Basket] = field(default_factory=dict)  # every basket read, by id (a repeat is dropped)
    seals: dict[int, tuple[int, Coverage]] = field(default_factory=dict)  # customers partition -> latest seal
    sent: dict[int, tuple[int, Coverage]] = field(default_factory=dict)  # the same, as this worker sent it
    recent: dict[int, ModelSnapshot] = field(default_factory=dict)  # version -> snapshot (the last few)
    stale: bool = False  # a basket came for an hour already folded: the next version is folded afresh

    def take(self, value: bytes) -> None:
        record = orjson.loads(value)
        if record["k"] == "basket":
            basket = Basket(record["id"], record["ts"], tuple(record["skus"]))
            if basket.id not in self.baskets:
                self.baskets[basket.id] = basket
                self.models.add(basket)
                if basket.ts < self.models.version:  # an hour already folded (a backfill): fold afresh
                    self.stale, self.recent = True, {}
        elif record["k"] == "seal":
            self.seals[record["p"]] = (record["until"], dict(record["input"]))

    def complete(self, coverage: Coverage | None = None) -> int | None:
        """Every partition has run every record before this time (None: a partition has not spoken yet). Given the
        reader's `coverage`, a seal made before its partition had taken the same input is not trusted: that
        partition may have received older records since (a backfill into a quiet worker) and not said so yet."""
        if len(self.seals) < self.partitions:
            return None
        return min(until if coverage is None or _covers(made, coverage) else NEVER
                   for until, made in self.seals.values())  # fmt: skip

    def fold(self) -> bool:
        """Fold the hours every partition has sealed; True when the model has a new version (for Redis)."""
        complete = self.complete()
        if complete is None or complete <= self.models.version:
            return False
        self.at(complete)
        return True

    def cap(self, coverage: Coverage) -> int | None:
        """The latest event time a customers partition that has taken `coverage` may run now (None: no limit)."""
        if not self.active:
            return None
        complete = self.complete(coverage)
        return NEVER if complete is None else complete + PERIOD_MS - 1

    def seal(self, partition: int, frontier: int, coverage: Coverage) -> bytes | None:
        """The seal to send for `partition`, complete before `frontier` (ms) with `coverage` taken, if it says
        something new: another hour, or more input taken (readers trust a seal only as far as it has taken theirs)."""
        until = boundary(frontier)
        if not self.active or self.sent.get(partition) == (until, coverage):
            return None
        self.sent[partition] = (until, coverage)
        return encode_seal(partition, until, coverage)

    def at(self, now: int) -> ModelSnapshot:
        """The snapshot a decision at `now` uses: every basket before `boundary(now)` (the customer agent runs `now`
        only once every partition has sealed that hour: `cap`)."""
        version = boundary(now)
        found = self.recent.get(version)
        if found is not None:
            return found
        if self.stale or version < self.models.version:  # a backfill: fold again from the baskets
            self.models, self.stale, self.recent = Models(), False, {}
            for basket in self.baskets.values():
                self.models.add(basket)
        self.models.seal(version)
        snapshot = self.recent[version] = self.models.current
        for old in sorted(self.recent)[:-KEPT_SNAPSHOTS]:
            del self.recent[old]
        return snapshot


async def follow(bootstrap: str, topic: str, learning: Learning, changed: Callable[[], Awaitable[None]]) -> None:
    """Read `<app>.baskets` from the start, for ever (read_committed: aborted steps teach nothing); `changed` is
    awaited after each new version."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                                isolation_level="read_committed", auto_offset_reset="earliest")  # fmt: skip
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, 0)])
        await consumer.seek_to_beginning()
        while True:
            batch = await consumer.getmany(timeout_ms=200, max_records=5000)
            for messages in batch.values():
                for message in messages:
                    if message.value is not None:
                        learning.take(message.value)
            if learning.fold():
                try:
                    await changed()
                except Exception:
                    log.warning("cannot write the new model version to Redis; next version", exc_info=True)
    except asyncio.CancelledError:
        raise
    finally:
        await consumer.stop()
