"""The customer agent's recently stepped states, decoded: a customer's next record in the same or a nearby batch
skips decoding its stored state (a profile, its runs and its send log: a tenth of the agent's CPU when decoded for
every record).

An entry is used only if its bytes equal what the table holds now, so it can never be stale (a rebalance, a
restore, a write by another path): it just misses. It is taken out for the step (which mutates the state in place)
and put back only once the step succeeded, so a step that failed half-way leaves nothing behind.
"""

from __future__ import annotations

from orchestrator.engine.state import CustomerState
from orchestrator.stream.records import decode_state

CAPACITY = 10_000  # states kept (a few kB each): the working set of a burst, not the customer base


class States:
    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self._entries: dict[bytes, tuple[bytes, CustomerState]] = {}  # customer key -> (stored bytes, state)

    def take(self, key: bytes, stored: bytes) -> CustomerState:
        """The state stored as `stored`: the one kept if it is that state, else decoded."""
        entry = self._entries.pop(key, None)
        if entry is not None and entry[0] == stored:
            return entry[1]
        return decode_state(stored)

    def put(self, key: bytes, stored: bytes, state: CustomerState) -> None:
        """`state` was just written as `stored`; the least recently used entry goes if full."""
        self._entries[key] = (stored, state)
        if len(self._entries) > self.capacity:
            del self._entries[next(iter(self._entries))]

    def clear(self) -> None:
        self._entries.clear()
