"""A seeded, realistic omnichannel event log for the chaos test, planned in 2-second slots.

People browse on social, ads, web and app, fill carts, walk into stores, buy online or at the till, change
consent, and sign in (an anonymous visitor becoming a known customer: a merge). Every event falls on an even
second after an even start and every journey wait in `tests/chaos/journeys` is odd after an event (even after
a timer), so no event lands within a second of a timer's due time: the worker's order equals `simulate`'s.

A person's events come under the identifier the channel knows: their customer key online, and once they have
signed in (which registers their loyalty card), now and then only the loyalty card at the store and the till,
keyed by the card: another input partition, which the worker must still take in event-time order. An anonymous
visitor's last event comes at least `SIGN_IN_GAP` slots before they sign in under their customer id, and the card
alone comes at least as long after it: identity resolution runs in arrival order, so a worker outage on one
partition must not swap a sign-in with the events it links.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from orchestrator.contract.events import customer_key

SLOT_SECONDS = 2
SIGN_IN_GAP = 25  # slots: longer than a worker outage (session timeout + recovery)
STORES = ["milano-01", "roma-02", "torino-03", "napoli-04"]
BROWSE_CHANNELS = ["web", "app", "social", "ads"]
GARBAGE = [b"not json at all", b'{"event_id": 1}', b"[1, 2, 3]", b'{"event_id": "x", "type": "cart_add"}']


@dataclass(frozen=True, slots=True)
class Planned:
    slot: int
    key: bytes | None
    document: dict[str, Any] | None  # None: `raw` is garbage bound for the DLQ
    raw: bytes = b""


class Person:
    def __init__(self, rng: random.Random, number: int, run: str) -> None:
        self.rng = rng
        self.customer_id = f"c-{run}-{number:05d}"
        self.anonymous_id = f"a-{run}-{number:05d}" if rng.random() < 0.4 else None
        self.signed_in = self.anonymous_id is None
        self.card: str | None = None  # registered at sign-in
        self.card_from = 0  # the first slot the till may know the card alone (`sign_in_gap` after the sign-in)
        self.sign_in_gap = SIGN_IN_GAP
        self.events: list[Planned] = []
        self.serial = 0

    @property
    def key(self) -> bytes:
        if self.signed_in:
            return customer_key(self.customer_id, None).encode()
        return customer_key(None, self.anonymous_id).encode()

    def add(self, slot: int, type_: str, via: str, **properties: Any) -> None:
        self.serial += 1
        document: dict[str, Any] = {"event_id": f"{self.customer_id}-{self.serial}", "type": type_, "channel": via}
        key = self.key
        if self.card is not None and slot >= self.card_from and via == "store" and self.rng.random() < 0.7:
            document["identities"] = {"loyalty_card": self.card}
            key = self.card.encode()
        elif self.signed_in:
            document["customer_id"] = self.customer_id
        else:
            document["anonymous_id"] = self.anonymous_id
        if properties:
            document["properties"] = properties
        self.events.append(Planned(slot, key, document))

    def session(self, slot: int) -> int:
        """One visit, from `slot`; returns the slot after its last event."""
        rng = self.rng
        for _ in range(rng.randint(0, 2)):
            self.add(slot, "page_view", rng.choice(BROWSE_CHANNELS), url=f"/p/{rng.randint(1, 500)}")
            slot += rng.randint(1, 3)
        if rng.random() < 0.25:
            return slot
        channel = rng.choice(["web", "app"])
        skus = []
        for _ in range(rng.randint(1, 3)):
            sku = f"SKU-{rng.randint(1, 80):03d}"
            skus.append(sku)
            self.add(slot, "cart_add", channel, sku=sku, price=rng.choice([9.9, 19.5, 24.0, 35.0, 59.9]), quantity=1)
            slot += rng.randint(1, 4)
        if rng.random() < 0.15:
            self.add(slot, "cart_remove", channel, sku=skus[0])
            slot += rng.randint(1, 3)
        outcome = rng.random()
        if outcome < 0.3:  # walks into a store, maybe buys there
            slot += rng.randint(2, 12)
            store = rng.choice(STORES)
            self.add(slot, "store_visit", "store", store_id=store)
            slot += rng.randint(1, 4)
            if rng.random() < 0.6:
                self.add(slot, "purchase", "store", order_id=f"o-{self.customer_id}-{slot}", value=42.0, store_id=store)
                slot += 1
        elif outcome < 0.55:  # buys online a little later
            slot += rng.randint(1, 8)
            self.add(slot, "purchase", channel, order_id=f"o-{self.customer_id}-{slot}", value=rng.choice([20.0, 64.5]))
            slot += 1
        elif outcome < 0.62:
            slot += rng.randint(1, 6)
            self.add(slot, "support_call", "call_center", topic="delivery")
            slot += 1
        return slot  # else: the cart is abandoned

    def sign_in(self, slot: int) -> int:
        self.serial += 1
        self.signed_in = True
        document: dict[str, Any] = {
            "event_id": f"{self.customer_id}-{self.serial}", "type": "identify",
            "channel": self.rng.choice(["web", "app"]), "customer_id": self.customer_id,
            "identities": {"email": f"{self.customer_id}@example.com", "loyalty_card": f"L-{self.customer_id}"},
            "properties": {"first_name": self.rng.choice(["Ada", "Luca", "Giulia", "Marco"])},
        }  # fmt: skip
        if self.anonymous_id is not None:
            document["anonymous_id"] = self.anonymous_id
        self.events.append(Planned(slot, self.key, document))
        self.card = f"L-{self.customer_id}"  # the till may know the card alone, once the sign-in has surely linked it
        self.card_from = slot + self.sign_in_gap
        return slot + 1


def plan(seed: int, people: int, slots: int, run: str = "x", sign_in_gap: int = SIGN_IN_GAP) -> list[Planned]:
    """Every record of the log (events, a few exact duplicates, a little garbage), in send order. `sign_in_gap`
    must outlast the longest outage of the run's faults (the harness checks that it did)."""
    rng = random.Random(seed)
    planned: list[Planned] = []
    for number in range(people):
        person = Person(rng, number, run)
        person.sign_in_gap = sign_in_gap
        slot = rng.randrange(0, max(1, slots - 40))
        if rng.random() < 0.8:
            person.add(slot, "consent_update", "web", channel="email", granted=rng.random() < 0.75)
            slot += 1
        if rng.random() < 0.6:
            person.add(slot, "consent_update", "app", channel="push", granted=rng.random() < 0.6)
            slot += 1
        if person.signed_in and rng.random() < 0.3:
            slot = person.sign_in(slot)
        slot = person.session(slot)
        if not person.signed_in and rng.random() < 0.7 and slot + sign_in_gap < slots - 12:
            slot = person.sign_in(slot + sign_in_gap)
        if rng.random() < 0.4 and slot < slots - 12:
            person.session(slot + rng.randint(1, 6))
        events = [e for e in person.events if e.slot < slots]
        planned.extend(events)
        if events and rng.random() < 0.05:  # a channel re-sends an event: same id, same content
            again = rng.choice(events)
            planned.append(Planned(min(slots - 1, again.slot + rng.randint(1, 5)), again.key, again.document))
        if rng.random() < 0.01:
            planned.append(Planned(rng.randrange(slots), None, None, rng.choice(GARBAGE)))
    planned.sort(key=lambda p: p.slot)  # stable: a person's events keep their order within a slot
    return planned
