"""Hypothesis strategies for realistic touchpoint logs, plus journeys, policies and engines built in code.

A log is a list of event *documents* (JSON-like dicts, file order); `to_events` turns it into the sorted
`Event` list the simulator replays, the same way `read_event_lines` does (stable sort on time).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from orchestrator.contract.events import Event, event_from_document
from orchestrator.contract.journeys import Journey, Policy
from orchestrator.contract.loader import load
from orchestrator.contract.offers import Catalogue
from orchestrator.engine import Engine
from orchestrator.engine.history import order_of

BASE = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)  # a Monday morning, just before the quiet window ends in Rome
SHIPPED = Path(__file__).resolve().parents[1] / "journeys"

EVENT_TYPES = ("cart_add", "cart_remove", "purchase", "store_visit", "consent_update", "identify", "page_view")
CHANNELS = ("web", "app", "store", "email", "social")
SKUS = ("SNK-42", "SOCK-1", "TEE-7", "CAP-3")
STORES = ("milano-1", "roma-2", "torino-3")
ZONES = ("Europe/Rome", "America/New_York", "Asia/Tokyo", "UTC")
OFFSETS = (UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=-5)))

# ------------------------------------------------------------------------------------ journeys


def _j(doc: dict[str, Any]) -> Journey:
    return Journey.model_validate(doc)


CODE_JOURNEYS: tuple[Journey, ...] = (
    _j({
        "id": "cart-nudge", "priority": 55,
        "trigger": {"event": "cart_add", "where": {"event.channel": {"in": ["web", "app"]}}},
        "reentry": "1h", "exit_on": ["purchase"], "goal": {"event": "purchase", "within": "2d"},
        "holdout": "30%",
        "steps": [
            {"wait": "30m"},
            {"id": "nudge-email", "send": {
                "channel": "email", "template": "cart-nudge", "fallback": ["push", "sms"],
                "data": {"items": "{{ profile.cart }}", "value": "{{ profile.cart_value }}",
                         "hi": "Ciao {{ profile.traits.first_name }}"},
                "coupon": {"discount_percent": 5, "valid_for": "1d"},
            }},
            {"id": "await-visit", "wait_for": {"event": "store_visit", "timeout": "2h"},
             "on_event": [{"id": "visit-push", "send": {
                 "channel": "push", "template": "visit-thanks",
                 "data": {"store": "{{ event.properties.store_id }}"}}}],
             "on_timeout": [{"id": "late-sms", "send": {
                 "channel": "sms", "template": "cart-last-call", "fallback": ["email"],
                 "data": {"value": "{{ profile.cart_value }}"}}}]},
        ],
    }),
    _j({
        "id": "browse", "priority": 50,
        "trigger": {"event": "page_view"}, "reentry": "always", "holdout": "50%",
        "steps": [
            {"id": "ab", "split": [
                {"weight": 1, "steps": [{"id": "browse-push", "send": {
                    "channel": "push", "template": "browse-a", "fallback": ["email"]}}]},
                {"weight": 1, "steps": [{"wait": "1h"}, {"id": "browse-email", "send": {
                    "channel": "email", "template": "browse-b", "data": {"url": "{{ entry.properties.url }}"}}}]},
            ]},
            {"id": "big-cart", "if": {"profile.cart_value": {"gte": 50}},
             "then": [{"id": "big-cart-sms", "send": {"channel": "sms", "template": "big-cart",
                                                      "fallback": ["push", "email"]}}],
             "else": ["exit"]},
        ],
    }),
    _j({
        "id": "hello", "priority": 80,
        "trigger": {"event": "identify"}, "reentry": "never", "exit_on": ["cart_remove"],
        "goal": {"event": "purchase", "within": "3d"},
        "steps": [
            {"id": "hello-email", "send": {"channel": "email", "template": "hello",
                                           "coupon": {"discount_percent": 10, "valid_for": "7d"}}},
            {"wait": "1s"},
            {"id": "hello-wait", "wait_for": {
                "event": "consent_update", "timeout": "1d",
                "where": {"event.properties.channel": "push", "event.properties.granted": True}},
             "on_event": [{"id": "hello-push", "send": {"channel": "push", "template": "hello-push"}}]},
        ],
    }),
    _j({
        "id": "visit-follow", "priority": 20,
        "trigger": {"event": "store_visit"}, "reentry": "2h",
        "steps": [
            {"wait_until": {"time": "10:00", "days": ["mon", "tue", "wed", "thu", "fri"]}},
            {"id": "visit-email", "send": {"channel": "email", "template": "visit-follow", "fallback": ["push"],
                                           "data": {"store": "{{ entry.properties.store_id }}"}}},
            {"wait": "30m"},
            {"id": "visit-push-2", "send": {"channel": "push", "template": "visit-2", "fallback": ["sms"]}},
        ],
    }),
)  # fmt: skip


@cache
def shipped() -> tuple[tuple[Journey, ...], Policy]:
    loaded = load([SHIPPED])
    assert loaded.ok, loaded.problems
    return tuple(loaded.journeys), loaded.policy


@cache
def shipped_catalogue() -> Catalogue:
    return load([SHIPPED]).catalogue


def journey_sets() -> dict[str, tuple[Journey, ...]]:
    return {"code": CODE_JOURNEYS, "shipped": shipped()[0], "both": CODE_JOURNEYS + shipped()[0]}


def policies() -> dict[str, Policy]:
    return {
        "capped": Policy.model_validate({
            "default_timezone": "Europe/Rome", "consent_required": ["email", "sms", "push"],
            "max_per_day": {"email": 1, "push": 2}, "quiet_hours": {"start": "21:00", "end": "08:00"},
        }),
        "open": Policy.model_validate({"consent_required": [], "max_per_day": {"email": 1, "push": 2, "sms": 1}}),
        "quiet-all": Policy.model_validate({
            "default_timezone": "America/New_York", "consent_required": ["email"],
            "max_per_day": {"email": 2, "push": 1, "sms": 0},
            "quiet_hours": {"start": "09:30", "end": "15:00", "channels": ["email", "push", "sms"]},
        }),
        "shipped": shipped()[1],
    }  # fmt: skip


ENGINE_KEYS = tuple((j, p) for j in ("code", "shipped", "both") for p in ("capped", "open", "quiet-all", "shipped"))


def make_engine(key: tuple[str, str]) -> Engine:
    """A fresh engine (nothing is shared between two calls but the immutable journey models)."""
    return Engine(journey_sets()[key[0]], policies()[key[1]], catalogue=shipped_catalogue())


engine_keys = st.sampled_from(ENGINE_KEYS)

# --------------------------------------------------------------------------------------- events


def _money(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.integers(int(lo * 100), int(hi * 100)).map(lambda cents: cents / 100)


def _maybe(key: str, strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(st.just({}), strategy.map(lambda value: {key: value}))


def _merge(*parts: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.tuples(*parts).map(lambda ds: {k: v for d in ds for k, v in d.items()})


PROPERTIES: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "cart_add": _merge(
        st.fixed_dictionaries({"sku": st.sampled_from(SKUS), "price": _money(0, 120)}),
        _maybe("quantity", st.integers(1, 3)),
        _maybe("name", st.sampled_from(("Sneaker", "Socks", "Tee", "Cap"))),
    ),
    "cart_remove": st.fixed_dictionaries({"sku": st.sampled_from(SKUS)}),
    "purchase": _merge(
        st.fixed_dictionaries({"order_id": st.from_regex(r"o-[0-9]{1,4}", fullmatch=True), "value": _money(0, 400)}),
        _maybe("store_id", st.sampled_from(STORES)),
        _maybe("items", st.lists(st.sampled_from(SKUS), max_size=2)),
    ),
    "store_visit": st.fixed_dictionaries({"store_id": st.sampled_from(STORES)}),
    "consent_update": st.fixed_dictionaries(
        {"channel": st.sampled_from(("email", "push", "sms")), "granted": st.booleans()}
    ),
    "identify": _merge(
        st.fixed_dictionaries({"first_name": st.sampled_from(("Anna", "Bruno", "Chiara"))}),
        _maybe("timezone", st.sampled_from(ZONES)),
        _maybe("tier", st.sampled_from(("gold", "silver"))),
    ),
    "page_view": st.fixed_dictionaries({"url": st.sampled_from(("/", "/sale", "/p/SNK-42"))}),
}

# Gaps between one customer's events, in milliseconds: around the journeys' waits, up to days,
# sometimes a little backwards (logs are only increasing-ish; the simulator sorts by time).
_S = 1000
GAPS_MS = st.one_of(
    st.sampled_from([0, 1, 59 * _S, 60 * _S, 1799 * _S, 1800 * _S, 1801 * _S, 3600 * _S, 7200 * _S,
                     6 * 3600 * _S, 12 * 3600 * _S, 18 * 3600 * _S, 23 * 3600 * _S, 86399 * _S, 86400 * _S,
                     86401 * _S, 2 * 86400 * _S, 3 * 86400 * _S]),
    st.integers(0, 4 * 86400).map(lambda s: s * _S),
    st.integers(1, 3600 * _S).map(lambda ms: -ms),
    st.integers(0, 999),
)  # fmt: skip


def format_time(ms: int, zone: timezone) -> str:
    moment = (BASE + timedelta(milliseconds=ms)).astimezone(zone)
    return moment.isoformat().replace("+00:00", "Z")


@st.composite
def customer_events(draw: st.DrawFn, who: str) -> list[dict[str, Any]]:
    """One customer's events in file order; event ids are filled in by `event_logs`."""
    anonymous = who.startswith("a-")
    weights = st.sampled_from((*EVENT_TYPES, "cart_add", "cart_add", "page_view", "consent_update"))
    count = draw(st.integers(1, 12))
    t = draw(st.integers(0, 2 * 86400)) * _S
    docs = []
    kind, channel = "", ""
    for _ in range(count):
        t += draw(GAPS_MS)
        if not kind or draw(st.sampled_from((True, True, False))):  # habits: now and then the same again
            kind, channel = draw(weights), draw(st.sampled_from(CHANNELS))
        doc: dict[str, Any] = {
            "type": kind,
            "occurred_at": format_time(t, draw(st.sampled_from(OFFSETS))),
            "channel": channel,
            "properties": draw(PROPERTIES[kind]),
        }
        if anonymous:
            doc["anonymous_id"] = who
        else:
            doc["customer_id"] = who
            if draw(st.sampled_from(range(10))) == 0:
                doc["anonymous_id"] = f"ck-{who}"  # known customer: the customer_id wins
        docs.append(doc)
    return docs


def customer_key(doc: dict[str, Any]) -> str:
    return doc["customer_id"] if "customer_id" in doc else f"anon:{doc['anonymous_id']}"


@st.composite
def event_logs(draw: st.DrawFn, min_customers: int = 1, max_customers: int = 4) -> list[dict[str, Any]]:
    """Several customers' events interleaved in an arbitrary file order (each customer's own order kept).

    Event ids are unique except that, now and then, an event reuses an earlier id of the same customer
    (a producer retry with a changed payload: the engine must keep the first one).
    """
    pool = ("c-1", "c-2", "c-3", "a-1", "a-2")
    people = draw(st.lists(st.sampled_from(pool), min_size=min_customers, max_size=max_customers, unique=True))
    per_customer = [draw(customer_events(who)) for who in people]
    labels = [i for i, docs in enumerate(per_customer) for _ in docs]
    order = draw(st.permutations(labels))
    cursors = [0] * len(per_customer)
    log: list[dict[str, Any]] = []
    ids_of: dict[str, list[str]] = {}
    for n, who in enumerate(order):
        doc = dict(per_customer[who][cursors[who]])
        cursors[who] += 1
        earlier = ids_of.setdefault(customer_key(doc), [])
        if earlier and draw(st.sampled_from(range(15))) == 0:
            doc["event_id"] = draw(st.sampled_from(earlier))
        else:
            doc["event_id"] = f"e-{n:03d}"
        earlier.append(doc["event_id"])
        log.append(doc)
    return log


def to_events(docs: list[dict[str, Any]]) -> list[Event]:
    """Documents -> events sorted by (time, event id) (what `read_event_lines` does)."""
    return sorted((event_from_document(doc) for doc in docs), key=order_of)


def duplicating(docs: list[dict[str, Any]]) -> st.SearchStrategy[list[dict[str, Any]]]:
    """The log with some lines repeated verbatim, each copy somewhere after its original."""

    @st.composite
    def build(draw: st.DrawFn) -> list[dict[str, Any]]:
        out = [dict(d) for d in docs]
        for _ in range(draw(st.integers(1, 5))):
            original = draw(st.integers(0, len(docs) - 1))
            index = out.index(docs[original])  # first (the original) occurrence
            where = draw(st.integers(index + 1, len(out)))
            out.insert(where, dict(docs[original]))
        return out

    return build()
