"""Hold a customer's records while anonymous customers are being merged into it.

A merge travels through the anonymous customer's partition (handover) and back (absorb), while the known
customer's next events come straight to its own partition: without holding them they could run before the
merge, where `simulate` runs them after. The ingest agent sends an `Expect` to the known customer first (in
the same transaction as the handovers); from then on its records wait in the `parked` table, changelog-backed
like the others, until every expected absorb has arrived, and are then processed in their order.

A record may be read twice (after a crash, or when faust skipped records, see stream/eos.py): the table also
remembers, per known customer, which anonymous customers it absorbed and when, so a second absorb or a late
`Expect` of the same merge changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

import orjson

from orchestrator.stream.records import Expect

log = logging.getLogger("orchestrator.worker")
ABSORBED = b"\x1fabsorbed"  # key suffix: which anonymous customers a customer absorbed, and when
PARK_LIMIT_MS = 300_000  # event time: a merge that has not arrived 5 minutes later is given up on, loudly


class Parking:
    def __init__(self, table: MutableMapping[bytes, bytes]) -> None:
        self.table = table

    def expect(self, item: Expect) -> None:
        absorbed = self._absorbed(item.customer)
        pending = {anonymous for anonymous in item.anonymous if absorbed.get(anonymous) != item.ts}
        if not pending:
            return  # that merge is done: a repeated Expect
        key = item.customer.encode()
        park = self._get(key) or {"waiting": [], "since": item.ts, "records": []}
        park["waiting"] = sorted(set(park["waiting"]) | pending)
        self.table[key] = orjson.dumps(park)

    def already_absorbed(self, customer: str, source: str, ts: int) -> bool:
        return self._absorbed(customer).get(source) == ts

    def absorbed(self, customer: str, source: str, ts: int) -> None:
        absorbed = self._absorbed(customer)
        absorbed[source] = ts
        self.table[customer.encode() + ABSORBED] = orjson.dumps(absorbed)

    def _absorbed(self, customer: str) -> dict[str, int]:
        raw = self.table.get(customer.encode() + ABSORBED)
        return {} if raw is None else orjson.loads(raw)

    def waiting(self, customer: str) -> list[str] | None:
        park = self._get(customer.encode())
        return None if park is None else park["waiting"]

    def hold(self, customer: str, raw: bytes, ts: int) -> list[bytes]:
        """Keep this record; returns every held record instead when the merge is overdue."""
        key = customer.encode()
        park = self._get(key)
        assert park is not None
        park["records"].append(raw.decode())
        if ts - park["since"] < PARK_LIMIT_MS:
            self.table[key] = orjson.dumps(park)
            return []
        log.error("merge into %s overdue (awaiting %s): processing its records without it", customer, park["waiting"])
        self.table.pop(key, None)
        return [record.encode() for record in park["records"]]

    def hold_first(self, customer: str, raw: bytes) -> None:
        """Keep this record ahead of the others held (the merging event, which came with one of its absorbs)."""
        key = customer.encode()
        park = self._get(key)
        assert park is not None
        park["records"].insert(0, raw.decode())
        self.table[key] = orjson.dumps(park)

    def arrived(self, customer: str, source: str) -> list[bytes]:
        """The merge from `source` is done: the held records, in order, once nothing else is awaited."""
        key = customer.encode()
        park = self._get(key)
        assert park is not None
        park["waiting"] = [anonymous for anonymous in park["waiting"] if anonymous != source]
        if park["waiting"]:
            self.table[key] = orjson.dumps(park)
            return []
        self.table.pop(key, None)
        return [record.encode() for record in park["records"]]

    def _get(self, key: bytes) -> dict[str, Any] | None:
        raw = self.table.get(key)
        return None if raw is None else orjson.loads(raw)
