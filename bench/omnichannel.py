"""The realistic log of bench/realistic.py, and the shipped journeys with waits short enough to run live.

The people are tests/chaos/generator.py's (its `Person`: browsing on web, app, social and ads, carts, store visits,
purchases online and at the till, consent, an anonymous visitor signing in), each with an email and, for most, a
loyalty card; their events travel under the key a real channel would know:

- the cookie (`anonymous_id`) before sign-in, the customer id after (the sign-in, `identify`, carries both, the
  email and the loyalty card: a merge of the visitor, and of the card's till customer if the card came first);
- the loyalty card alone at the till (`store_visit`, `purchase` in a store: identities {loyalty_card}, keyed by
  the card): a customer of its own until an identify links the card, the known customer after;
- the email alone for a newsletter click and a double opt-in (`page_view` and `consent_update` from the email
  channel: identities {email}, keyed by the email), after the sign-in that linked it.

Order across keys is not guaranteed (docs/identity.md): an event that needs a link made under another key comes
at least `gap` slots after it (2 s each; the chaos log's sign-in gap, 25), as a person's next visit would; so does
everything after a sign-in. Within a visit, though, a person's events change keys from one to the next (the cart
under the customer id, the till a minute later under the card): in a burst nothing keeps that order, since the
worker reads its input partitions side by side, not in event time (bench/realistic.py counts the inputs it took out
of `simulate`'s order).
Like the chaos log: 2-second slots, every event on an even second, 5 % of people get one event sent twice (same
id, same content) and 1 % one garbage record (bound for the DLQ).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import yaml

from tests.chaos.generator import GARBAGE, SIGN_IN_GAP, SLOT_SECONDS, Person, Planned

CARD_SHARE = 0.6  # people with a loyalty card
GAP = SIGN_IN_GAP  # slots (25: 50 s) between an event and the next one that needs a link it made under another key
SLOT_MS = SLOT_SECONDS * 1000


class Shopper(Person):
    def __init__(self, rng: random.Random, number: int, run: str) -> None:
        super().__init__(rng, number, run)
        self.email = f"{self.customer_id}@example.com"
        self.card = f"LC-{run}-{number:05d}" if rng.random() < CARD_SHARE else None
        self.identified = False  # an identify linked the email (and the card)

    def add(self, slot: int, type_: str, via: str, **properties: Any) -> None:
        if via == "store" and self.card is not None:  # at the till the card is all the POS knows
            self.add_under("loyalty_card", self.card, slot, type_, via, **properties)
        else:
            super().add(slot, type_, via, **properties)

    def add_under(self, kind: str, value: str, slot: int, type_: str, via: str, /, **properties: Any) -> None:
        """An event that names the person by one identity only, keyed by it."""
        self.serial += 1
        document: dict[str, Any] = {"event_id": f"{self.customer_id}-{self.serial}", "type": type_, "channel": via,
                                    "identities": {kind: value}}  # fmt: skip
        if properties:
            document["properties"] = properties
        self.events.append(Planned(slot, f"{kind}:{value}".encode(), document))

    def sign_in(self, slot: int) -> int:
        """The chaos person's identify (customer id, cookie if any, email), with the loyalty card."""
        slot = super().sign_in(slot)
        self.identified = True
        document = self.events[-1].document
        assert document is not None
        if self.card is not None:
            document["identities"]["loyalty_card"] = self.card
        return slot

    def from_email(self, slot: int) -> int:
        """A newsletter click, sometimes the double opt-in that grants email."""
        url = f"/newsletter/{self.rng.randint(1, 20)}"
        self.add_under("email", self.email, slot, "page_view", "email", url=url)
        if self.rng.random() < 0.6:
            self.add_under("email", self.email, slot + 1, "consent_update", "email", channel="email", granted=True)
        return slot + 2


def plan(seed: int, people: int, slots: int, run: str, gap: int = GAP) -> list[Planned]:
    """Every record of the log (events, exact resends, a little garbage), in send order (by slot)."""
    rng = random.Random(seed)
    planned: list[Planned] = []
    span = 2 * gap + 40  # about the longest person (longer ones are cut at the end of the log)
    for number in range(people):
        person = Shopper(rng, number, run)
        slot = rng.randrange(0, max(1, slots - span))
        if rng.random() < 0.8:
            person.add(slot, "consent_update", "web", channel="email", granted=rng.random() < 0.75)
            slot += 1
        if rng.random() < 0.6:
            person.add(slot, "consent_update", "app", channel="push", granted=rng.random() < 0.6)
            slot += 1
        if person.signed_in and (person.card is not None or rng.random() < 0.3):
            slot = person.sign_in(slot) + gap  # links the card and the email: the till comes later
        slot = person.session(slot)
        if not person.signed_in and rng.random() < 0.7:
            slot = person.sign_in(slot + gap) + gap  # the merge, then the next visit
        if person.identified and rng.random() < 0.35:
            slot = person.from_email(slot + rng.randint(1, 4))
        if rng.random() < 0.4:
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


# ---------------------------------------------------------------------------------------- journeys

# The shipped journeys' waits, short enough to wait for. Events fall on even seconds: a wait that starts at an
# event is odd, a wait that starts at a timer (abandoned-cart's second wait, 1d) even, so no timer falls due on
# an event's second (the chaos journeys' rule).
SHORT_WAITS = {"30m": "5s", "1d": "4s", "2d": "7s", "3d": "21s", "7d": "31s"}


def shorten(node: Any, path: str) -> Any:
    """A copy of a journey's YAML with every `wait` and `wait_for.timeout` from SHORT_WAITS."""
    if isinstance(node, list):
        return [shorten(item, f"{path}[{i}]") for i, item in enumerate(node)]
    if not isinstance(node, dict):
        return node
    if "wait_until" in node:
        raise ValueError(f"{path}: wait_until waits for a time of day, which would outlive the run: pass --journeys")
    copy = {key: shorten(value, f"{path}.{key}") for key, value in node.items()}
    if "wait" in copy:
        copy["wait"] = short_wait(str(copy["wait"]), path)
    if isinstance(copy.get("wait_for"), dict) and "timeout" in copy["wait_for"]:
        copy["wait_for"]["timeout"] = short_wait(str(copy["wait_for"]["timeout"]), path)
    return copy


def short_wait(duration: str, path: str) -> str:
    if duration not in SHORT_WAITS:
        raise ValueError(f"{path}: no short version of the wait {duration!r} in bench/omnichannel.py SHORT_WAITS: "
                         "add one (odd seconds after an event, even after a timer) or pass --journeys")  # fmt: skip
    return SHORT_WAITS[duration]


def short_journeys(source: Path, target: Path) -> list[str]:
    """Write `source`'s journeys with short waits into `target`, and its policy without quiet hours (a deferral
    to the morning would outlive the run); returns the journey ids."""
    target.mkdir(parents=True, exist_ok=True)
    ids = []
    for path in sorted(source.glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        if path.name == "policy.yaml":
            data.pop("quiet_hours", None)
        elif path.name == "offers.yaml":
            pass  # the catalogue as it is: its caps and validity span the whole run anyway
        else:
            data = shorten(data, path.name)
            ids.append(str(data["id"]))
        change = {"policy.yaml": "without quiet hours", "offers.yaml": "as it is"}.get(path.name, "with short waits")
        header = f"# Written by bench/omnichannel.py: {path} {change}.\n"
        target.joinpath(path.name).write_text(header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return ids
