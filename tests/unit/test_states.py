"""The customer agent's cache of decoded states (stream/states.py): used only while the table holds exactly the
bytes it was written as, taken out for a step and put back only after it."""

from __future__ import annotations

from orchestrator.engine.state import CustomerState
from orchestrator.stream.records import encode_state
from orchestrator.stream.states import States


def stored(key: str, events: int) -> tuple[bytes, CustomerState]:
    state = CustomerState(key)
    state.profile["events"] = {"page_view": events}
    return encode_state(state), state


def test_a_state_is_reused_only_while_the_table_holds_its_bytes() -> None:
    states = States()
    raw, state = stored("c-1", 1)
    states.put(b"c-1", raw, state)
    assert states.take(b"c-1", raw) is state
    assert states.take(b"c-1", raw) is not state  # taken out for the step: a failed step leaves nothing
    states.put(b"c-1", raw, state)
    other, _ = stored("c-1", 2)  # the table moved on (a restore, another worker)
    decoded = states.take(b"c-1", other)
    assert decoded is not state and decoded.profile["events"] == {"page_view": 2}


def test_the_least_recently_used_state_goes_first() -> None:
    states = States(capacity=2)
    entries = {key: stored(key, 1) for key in ("a", "b", "c")}
    states.put(b"a", *entries["a"])
    states.put(b"b", *entries["b"])
    states.put(b"a", entries["a"][0], states.take(b"a", entries["a"][0]))  # a used again
    states.put(b"c", *entries["c"])
    assert states.take(b"a", entries["a"][0]) is entries["a"][1]
    assert states.take(b"b", entries["b"][0]) is not entries["b"][1]
