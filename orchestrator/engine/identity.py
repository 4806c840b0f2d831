"""Who is this? The identifiers on an event -> one customer key, by rules that need only a lookup.

The graph maps identifier keys to customer keys. In `simulate` it is a dict; in the worker it is
Redis, shared by all workers. Both call `resolve`, so both decide the same.

Raw emails, phones and cards never become keys: `identifier_key` normalises and hashes them with
a keyed BLAKE2b whose secret comes from settings.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from orchestrator.contract.events import Event

DEV_IDENTITY_SECRET = b"orchestrator-dev-identity-secret"
ANON = "anon:"
ANONYMOUS_ID = "anonymous_id"  # the event's cookie/device id, kept in clear as the contract's key
_NOT_DIGITS = re.compile(r"[^\d+]")


def normalise(kind: str, value: str) -> str:
    """Trim; e-mail lower-cased; phone to E.164 where it can be told (`00` becomes `+`)."""
    text = value.strip()
    if kind == "email":
        return text.lower()
    if kind == "phone":
        digits = _NOT_DIGITS.sub("", text)
        if digits.startswith("00"):
            digits = "+" + digits[2:]
        return digits
    return text


def identifier_key(kind: str, value: str, secret: bytes) -> str:
    """`email:9f2c…`: the kind in clear (for lookups by kind), the value hashed."""
    digest = hashlib.blake2b(
        f"{kind}\x1f{normalise(kind, value)}".encode(), key=secret[:64], digest_size=16, person=b"orch-ident"
    )
    return f"{kind}:{digest.hexdigest()}"


def is_anonymous(customer: str) -> bool:
    return customer.startswith(ANON)


def anonymous_key(identifier: str) -> str:
    """The key of a new anonymous customer: `anon:<anonymous_id>` (the event contract's), else `anon:<identifier>`."""
    kind, _, value = identifier.partition(":")
    return ANON + (value if kind == ANONYMOUS_ID else identifier)


def named_after(customer: str) -> list[str]:
    """The identifier an anonymous customer's key was made from (`anonymous_key`'s inverse; both readings when
    an anonymous_id itself holds a colon)."""
    value = customer.removeprefix(ANON)
    return [f"{ANONYMOUS_ID}:{value}", *([value] if ":" in value else [])]


@dataclass(slots=True)
class Resolution:
    customer: str
    links: dict[str, str] = field(default_factory=dict)  # identifier -> customer, to write to the graph
    merges: list[str] = field(default_factory=list)  # anonymous customers to fold into `customer`
    conflicts: list[tuple[str, str]] = field(default_factory=list)  # (identifier, the known customer it left)


def resolve(customer_id: str | None, identifiers: list[str], graph: Mapping[str, str]) -> Resolution:
    """Decide the customer of an event from its `customer_id` and identifier keys (first one first).

    - with a customer_id: that customer; every identifier is linked to it; an anonymous customer that
      one of them pointed to is merged into it; one that pointed to another known customer moves to
      this one (never merging two known customers) and the conflict is reported;
    - without: the known customer any identifier points to (the first such), else the anonymous
      customer one points to, else a new anonymous customer keyed by the first identifier.
    """
    linked = [(identifier, graph.get(identifier)) for identifier in identifiers]
    if customer_id is not None:
        customer = customer_id
    else:
        known = [c for _, c in linked if c is not None and not is_anonymous(c)]
        anonymous = [c for _, c in linked if c is not None and is_anonymous(c)]
        customer = (known or anonymous or [anonymous_key(identifiers[0])])[0]
    resolution = Resolution(customer)
    for identifier, current in linked:
        if current == customer:
            continue
        resolution.links[identifier] = customer
        if current is None:
            continue
        if is_anonymous(current):
            if current not in resolution.merges:
                resolution.merges.append(current)
        elif customer_id is not None:
            resolution.conflicts.append((identifier, current))
        else:
            # An anonymous event names two known customers: keep the first, never move ids on a guess.
            del resolution.links[identifier]
    return resolution


def event_identifiers(event: Event, secret: bytes) -> list[str]:
    """The identifier keys an event carries: its anonymous_id (in clear), then each identity, hashed."""
    identifiers = []
    anonymous_id = event.data.get("anonymous_id")
    if isinstance(anonymous_id, str):
        identifiers.append(f"{ANONYMOUS_ID}:{anonymous_id}")
    if event.identities:
        identifiers.extend(identifier_key(kind, value, secret) for kind, value in event.identities)
    return identifiers


def resolve_event(event: Event, identifiers: list[str], graph: Mapping[str, str]) -> tuple[Resolution, Event]:
    """Resolve, and return the event keyed to its customer, its identities kept only as hashed keys."""
    if not identifiers:  # only a customer_id: nothing to look up (the hot path of known customers)
        return Resolution(event.customer), event
    resolution = resolve(event.data.get("customer_id"), identifiers, graph)
    data = event.data
    if event.identities:
        hashed = dict(zip((kind for kind, _ in event.identities), identifiers[-len(event.identities) :], strict=True))
        data = {**data, "identities": hashed}
    resolved = Event(event.id, event.type, event.ts, event.channel, resolution.customer, data, (), tuple(identifiers))
    return resolution, resolved


def conflict_records(resolution: Resolution, at: str) -> list[dict[str, str]]:
    """Audit records for identifiers that moved between two known customers (never a merge)."""
    return [
        {"at": at, "customer": resolution.customer, "kind": "identity_conflict",
         "identifier_kind": identifier.partition(":")[0], "from": previous}
        for identifier, previous in resolution.conflicts
    ]  # fmt: skip
