"""The batch's coalesced writes (stream/batching.py, serving/redis.py `Pending`), without services: a batch seen
through `Staged` reads like the table written at once, and its flush writes each changed key once."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from orchestrator.engine.state import CustomerState
from orchestrator.serving.redis import Pending, Trail
from orchestrator.stream.batching import Outbox, Staged

KEYS = st.sampled_from([b"a", b"b", b"c", b"d"])
OPS = st.lists(st.tuples(st.sampled_from(["set", "pop", "del"]), KEYS, st.binary(min_size=1, max_size=3)))


class Changelog:
    def get_topic_name(self) -> str:
        return "t-changelog"


class Table(dict[bytes, bytes]):
    """A faust table's surface that Staged uses: a mapping, its store (`data`) and its changelog topic."""

    changelog_topic = Changelog()

    @property
    def data(self) -> dict[bytes, bytes]:
        return self


def apply(target: Any, ops: list[tuple[str, bytes, bytes]]) -> list[Any]:
    seen = []
    for op, key, value in ops:
        if op == "set":
            target[key] = value
        elif op == "pop":
            seen.append(target.pop(key, None))
        elif key in target:
            del target[key]
        seen.append((key in target, target.get(key), sorted(target)))
    return seen


@given(st.dictionaries(KEYS, st.binary(min_size=1, max_size=3)), OPS)
def test_a_staged_batch_reads_and_ends_like_the_table_written_at_once(before: dict[bytes, bytes], ops: Any) -> None:
    direct, table = dict(before), Table(before)
    staged, outbox = Staged(table), Outbox(partition=2)
    assert apply(staged, ops) == apply(direct, ops)
    staged.flush(outbox)
    assert dict(table) == direct and not staged.changes
    written = {key: value for _, key, value, _ in outbox.records}
    assert len(written) == len(outbox.records)  # each key once
    assert all(direct.get(key) == value for key, value in written.items())  # its last value (None: a tombstone)
    assert written.keys() <= {key for _, key, _ in ops}
    assert {k for k in before.keys() | direct.keys() if before.get(k) != direct.get(k)} <= written.keys()
    assert {(topic, partition) for topic, _, _, partition in outbox.records} <= {("t-changelog", 2)}


def test_a_key_held_and_released_in_one_batch_never_reaches_the_changelog() -> None:
    table = Table()
    staged, outbox = Staged(table), Outbox(partition=0)
    staged[b"held"] = b"record"
    assert staged.pop(b"held") == b"record"
    staged.flush(outbox)
    assert outbox.records == [] and dict(table) == {}


def test_pending_keeps_the_last_summary_merges_kpis_and_every_trail() -> None:
    first, second = CustomerState("c-1"), CustomerState("c-1")
    pending = Pending()
    assert not pending
    pending.summary(first, 1)
    pending.summary(second, 2)
    pending.count((0, {"a": 1, "b": 2}))
    pending.count((0, {"b": 3}))
    pending.count((1, {}))
    pending.trail("c-1", Trail(1, [(1, {"kind": "event"})]))
    pending.trail("c-1", Trail(2, []))
    pending.link({}, {})  # no link: nothing to write
    assert pending.summaries == {"c-1": (second, 2)}
    assert pending.kpis == {0: {"a": 1, "b": 3}}
    assert len(pending.trails) == 1 and pending.links == []
    pending.clear()
    assert not pending
