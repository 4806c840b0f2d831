"""Benchmark of the Redis serving layer: identity resolution per event, and the HTTP API.

    python -m bench.serving [--customers 20000] [--events 50000] [--requests 20000] [--concurrency 32]

Runs against the real Redis of ORCH_REDIS_URL (default redis://127.0.0.1:6379/0), under a fresh key prefix
(`bench:<uuid>:`) that is deleted at the end, whatever happens.

(1) Identity resolution, as the worker's ingest agent does it for each event, one event at a time:
    `event_identifiers` (keyed hashing) -> `Serving.lookup` (one MGET) -> `resolve_event` -> `Serving.link`
    (one pipelined round trip, skipped when there is nothing to link). The log mixes logged-in events
    (customer_id + email + loyalty_card, half with the device cookie), anonymous cookies (customers'
    devices and pure visitors) and store events carrying only a known customer's loyalty card. Side by side,
    on the same events and a namespace of its own, a naive store: one GET per identifier, one SET (+ SADD,
    + SREM) per link, each awaited on its own. The two run in alternating chunks so drift hits both alike.
    "Redis" time is the wall time awaited in lookup/link (redis-py's own encoding and parsing included),
    "CPU" the hashing and the resolution rules.

(2) The API: N customers seeded with `Serving.link` + `Serving.publish` (real `CustomerState`s, coupons issued
    through actions), then the app of `create_app` served in-process with `web.AppRunner`/`TCPSite` on a free
    port, its Redis client built by `api.connect` as `orchestrator api` does, and R requests fired by
    `aiohttp.ClientSession` at the given concurrency: lookups by email, loyalty_card and customer_id, and
    coupon checks. Baseline: R raw `redis.asyncio` GETs of the same summaries at the same concurrency, the
    floor the API cannot beat; and, to calibrate, the same client against a bare aiohttp handler answering a
    fixed body (HTTP's own cost). Client and server share this process and its event loop: the API's figure
    includes the client's CPU.

This is a benchmark, not a test: it asserts nothing, but it reports non-200 answers and wrong customers.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import os
import platform
import random
import time
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import Any, Protocol
from urllib.parse import quote

import aiohttp
import orjson
import redis.exceptions
from aiohttp import web
from pydantic import SecretStr

from bench.machine import cpu_model
from orchestrator.contract.events import Event, event_from_document
from orchestrator.engine import CustomerState
from orchestrator.engine.identity import event_identifiers, identifier_key, resolve_event
from orchestrator.engine.ids import coupon_code
from orchestrator.process import tune_gc
from orchestrator.serving.api import connect, create_app
from orchestrator.serving.api import log as api_log
from orchestrator.serving.connect import RedisClient, connect_redis
from orchestrator.serving.keys import Keys
from orchestrator.serving.redis import Serving
from orchestrator.settings import Settings
from orchestrator.timefmt import format_ms

FIRST_NAMES = ("Anna", "Luca", "Giulia", "Marco", "Sara", "Paolo", "Elena", "Davide", "Chiara", "Matteo")
LAST_NAMES = ("Rossi", "Bianchi", "Romano", "Colombo", "Ricci", "Marino", "Greco", "Bruno", "Gallo", "Conti")
TIERS = ("bronze", "silver", "gold")
CHUNK = 2_000  # events per alternation between the pipelined and the naive store
DAY_MS = 86_400_000


# --------------------------------------------------------------------------------- people and events


def email_of(number: int) -> str:
    """Mixed case on purpose: the worker and the API both normalise before hashing."""
    return f"{FIRST_NAMES[number % 10]}.{LAST_NAMES[number // 10 % 10]}{number}@Example.com"


def card_of(number: int) -> str:
    return f"LC{number:012d}"


def customer_of(number: int) -> str:
    return f"c-{number:06d}"


def generate_events(customers: int, events: int, seed: int) -> list[dict[str, Any]]:
    """Event documents: 40% logged in (customer_id + email + loyalty_card, half with the device cookie),
    45% anonymous cookies (60% a customer's device, 40% a pure visitor), 15% a store visit with only a card."""
    rng = random.Random(seed)
    visitors = max(1, customers // 2)
    ts = 1_772_409_600_000  # 2026-03-02T00:00:00Z
    out: list[dict[str, Any]] = []
    for n in range(events):
        ts += rng.randint(1, 2_000)
        who = rng.randrange(customers)
        doc: dict[str, Any] = {"event_id": f"e-{n:08d}", "occurred_at": format_ms(ts)}
        roll = rng.random()
        if roll < 0.40:
            doc |= {
                "type": "page_view", "channel": rng.choice(("web", "app", "email")), "customer_id": customer_of(who),
                "identities": {"email": email_of(who), "loyalty_card": card_of(who)},
                "properties": {"path": "/account"},
            }  # fmt: skip
            if rng.random() < 0.5:
                doc["anonymous_id"] = f"ck-{who:06d}-{rng.randrange(2)}"
        elif roll < 0.85:
            cookie = f"ck-{who:06d}-{rng.randrange(2)}" if rng.random() < 0.6 else f"v-{rng.randrange(visitors):06d}"
            doc |= {"type": "page_view", "channel": rng.choice(("web", "app")), "anonymous_id": cookie,
                    "properties": {"path": rng.choice(("/", "/p", "/c/sale", "/cart"))}}  # fmt: skip
        else:
            doc |= {"type": "store_visit", "channel": "store", "identities": {"loyalty_card": card_of(who)},
                    "properties": {"store_id": f"S{rng.randrange(40):03d}"}}  # fmt: skip
        out.append(doc)
    return out


# --------------------------------------------------------------------------------- part 1: identity resolution


class Graph(Protocol):
    async def lookup(self, identifiers: list[str]) -> tuple[dict[str, str], list[str]]: ...

    async def link(self, links: Mapping[str, str], previous: Mapping[str, str]) -> None: ...


class NaiveServing:
    """`Serving.lookup`/`link` without batching: one awaited command per identifier and per write."""

    def __init__(self, client: RedisClient, keys: Keys) -> None:
        self.redis = client
        self.keys = keys
        self.round_trips = 0

    async def lookup(self, identifiers: list[str]) -> tuple[dict[str, str], list[str]]:
        found: dict[str, str] = {}
        for identifier in identifiers:
            value = await self.redis.get(self.keys.identifier(identifier))
            self.round_trips += 1
            if value is not None:
                found[identifier] = value.decode() if isinstance(value, bytes) else value
        return found, []

    async def link(self, links: Mapping[str, str], previous: Mapping[str, str]) -> None:
        for identifier, customer in links.items():
            await self.redis.set(self.keys.identifier(identifier), customer)
            await self.redis.sadd(self.keys.identifiers_of(customer), identifier)
            self.round_trips += 2
            if identifier in previous and previous[identifier] != customer:
                await self.redis.srem(self.keys.identifiers_of(previous[identifier]), identifier)
                self.round_trips += 1


@dataclass
class Tally:
    """Per-event figures of one store over the whole log (all in nanoseconds)."""

    latencies: list[int] = field(default_factory=list)
    redis_ns: int = 0
    lookup_ns: int = 0
    cpu_ns: int = 0
    wall_ns: int = 0
    process_ns: int = 0  # this process's CPU time over the timed chunks
    round_trips: int = 0
    with_links: int = 0
    links: int = 0
    merges: int = 0


async def resolve_chunk(graph: Graph, events: Sequence[Event], secret: bytes, tally: Tally) -> None:
    """The ingest agent's per-event identity work, one event at a time."""
    clock = time.perf_counter_ns
    latencies = tally.latencies
    lookup_ns = link_ns = cpu_ns = trips = with_links = links = merges = 0
    p0 = time.process_time_ns()
    w0 = clock()
    for event in events:
        t0 = clock()
        identifiers = event_identifiers(event, secret)
        t1 = clock()
        found = await graph.lookup(identifiers)
        t2 = clock()
        resolution, _resolved = resolve_event(event, identifiers, found)
        t3 = clock()
        await graph.link(resolution.links, found)
        t4 = clock()
        latencies.append(t4 - t0)
        cpu_ns += (t1 - t0) + (t3 - t2)
        lookup_ns += t2 - t1
        link_ns += t4 - t3
        trips += 1 + bool(resolution.links)  # Serving's count; the naive store keeps its own
        if resolution.links:
            with_links += 1
            links += len(resolution.links)
        merges += len(resolution.merges)
    tally.wall_ns += clock() - w0
    tally.process_ns += time.process_time_ns() - p0
    tally.redis_ns += lookup_ns + link_ns
    tally.lookup_ns += lookup_ns
    tally.cpu_ns += cpu_ns
    tally.round_trips += trips
    tally.with_links += with_links
    tally.links += links
    tally.merges += merges


def pct(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of sorted values."""
    return values[min(len(values) - 1, max(0, round(q / 100 * len(values)) - 1))]


@dataclass
class Figures:
    name: str
    ops: int
    seconds: float
    p50_us: float
    p99_us: float
    round_trips: float  # per op
    process_cpu: float  # process CPU time / wall time
    notes: str = ""
    concurrency: int = 1

    @property
    def rate(self) -> float:
        return self.ops / self.seconds

    @property
    def mean_us(self) -> float:
        return self.seconds * 1e6 / self.ops


def figures_of(name: str, tally: Tally, round_trips: int) -> Figures:
    ordered = sorted(tally.latencies)
    n = len(ordered)
    return Figures(name, n, tally.wall_ns / 1e9, pct(ordered, 50) / 1e3, pct(ordered, 99) / 1e3, round_trips / n,
                   tally.process_ns / tally.wall_ns)  # fmt: skip


async def ping_rtt(client: RedisClient, count: int = 2_000) -> float:
    """p50 of a redis-py asyncio PING, in µs: the price of one round trip from Python here."""
    samples = []
    for _ in range(count):
        t0 = time.perf_counter_ns()
        await client.ping()
        samples.append(time.perf_counter_ns() - t0)
    samples.sort()
    return pct(samples, 50) / 1e3


async def bench_identity(client: RedisClient, prefix: str, args: argparse.Namespace) -> list[Figures]:
    secret = Settings().identity_secret.get_secret_value().encode()
    t0 = time.perf_counter()
    docs = generate_events(args.customers, args.events, args.seed)
    events = [event_from_document(doc) for doc in docs]
    kinds = Counter(
        "known" if "customer_id" in d else "card only" if "anonymous_id" not in d else
        "customer cookie" if d["anonymous_id"].startswith("ck-") else "visitor cookie"
        for d in docs
    )  # fmt: skip
    del docs
    print(f"\n## (1) identity resolution: {len(events):,} events, {args.customers:,} customers "
          f"(generated and parsed in {time.perf_counter() - t0:.1f} s)")  # fmt: skip
    print("    mix: " + ", ".join(f"{k} {v / len(events):.0%}" for k, v in kinds.most_common()))
    gc.collect()
    gc.freeze()  # the log is input, not the worker's garbage

    rtt = await ping_rtt(client)
    print(f"    redis-py asyncio PING round trip p50: {rtt:.1f} µs")

    pipelined = Serving(client, Keys(f"{prefix}pipelined:"))
    naive = NaiveServing(client, Keys(f"{prefix}naive:"))
    warm = events[: min(1_000, len(events))]
    await resolve_chunk(Serving(client, Keys(f"{prefix}warm-p:")), warm, secret, Tally())
    await resolve_chunk(NaiveServing(client, Keys(f"{prefix}warm-n:")), warm, secret, Tally())

    p_tally, n_tally = Tally(), Tally()
    for index, start in enumerate(range(0, len(events), CHUNK)):
        chunk = events[start : start + CHUNK]
        runs: list[tuple[Graph, Tally]] = [(pipelined, p_tally), (naive, n_tally)]
        for graph, tally in runs if index % 2 == 0 else reversed(runs):
            await resolve_chunk(graph, chunk, secret, tally)
    gc.unfreeze()

    p = figures_of("pipelined (Serving: MGET + 1 pipeline)", p_tally, p_tally.round_trips)
    n = figures_of("naive (GET per id, SET/SADD per link)", n_tally, naive.round_trips)
    for fig, tally in ((p, p_tally), (n, n_tally)):
        total = tally.redis_ns + tally.cpu_ns
        print(f"\n  {fig.name}")
        print(f"    {fig.rate:,.0f} events/s, {fig.mean_us:.1f} µs/event; p50 {fig.p50_us:.1f} µs, "
              f"p99 {fig.p99_us:.1f} µs; {fig.round_trips:.2f} Redis round trips/event")  # fmt: skip
        print(f"    time in Redis calls {tally.redis_ns / total:.0%} ({tally.redis_ns / 1e3 / fig.ops:.1f} µs/event), "
              f"CPU (hashing + resolve) {tally.cpu_ns / total:.0%} ({tally.cpu_ns / 1e3 / fig.ops:.1f} µs/event); "
              f"process CPU {fig.process_cpu:.0%} of wall")  # fmt: skip
        link_ns = tally.redis_ns - tally.lookup_ns
        per_link = link_ns / 1e3 / max(1, tally.with_links)
        print(f"    lookup {tally.lookup_ns / 1e3 / fig.ops:.1f} µs/event; link {per_link:.1f} µs "
              f"per event that links ({tally.with_links / fig.ops:.1%} of events, {tally.links:,} links, "
              f"{tally.merges:,} merges)")  # fmt: skip
    print(f"\n  pipelining: {p.rate / n.rate:.2f}x the events/s, {n.round_trips / p.round_trips:.2f}x fewer round "
          f"trips, p99 {n.p99_us / p.p99_us:.2f}x lower")  # fmt: skip
    p.notes = f"Redis {p_tally.redis_ns / (p_tally.redis_ns + p_tally.cpu_ns):.0%} of time"
    n.notes = f"Redis {n_tally.redis_ns / (n_tally.redis_ns + n_tally.cpu_ns):.0%} of time"
    return [p, n]


# --------------------------------------------------------------------------------- part 2: the API


def seeded_state(number: int, now: int, rng: random.Random) -> CustomerState:
    """A customer as the worker would hold it; 60% hold an issued coupon, as the runner records it."""
    key = customer_of(number)
    state = CustomerState(key)
    profile = state.profile
    profile["traits"] = {
        "first_name": FIRST_NAMES[number % 10], "tier": rng.choice(TIERS), "language": "it",
        "timezone": "Europe/Rome", "email": email_of(number),  # not a safe trait: summary() drops it
    }  # fmt: skip
    profile["orders"] = rng.randrange(20)
    profile["lifetime_value"] = round(profile["orders"] * rng.uniform(20, 120), 2)
    profile["last_store_id"] = f"S{rng.randrange(40):03d}"
    profile["last_channel"] = rng.choice(("web", "app", "store"))
    profile["last_seen_at"] = format_ms(now - rng.randrange(30 * DAY_MS))
    profile["cart"] = [{"sku": f"SKU-{rng.randrange(2000):04d}", "price": 29.9, "quantity": 1}]
    profile["cart_value"] = 29.9
    profile["consent"] = {"email": True, "sms": rng.random() < 0.4}
    profile["channels"] = ["email", "web"]
    if rng.random() < 0.6:
        action = f"bench-{number}"
        profile["offers"] = {
            coupon_code(action, b"bench-coupon-secret"): {
                "journey": "cart-abandonment", "run": 1, "action_id": action, "issued_at": format_ms(now - DAY_MS),
                "discount_percent": 10, "expires_at": format_ms(now + 14 * DAY_MS), "status": "issued",
            }
        }  # fmt: skip
    return state


async def seed(serving: Serving, customers: int, seed_: int, secret: bytes) -> dict[str, str]:
    """Summaries, coupons and identity links of `customers` customers; returns coupon code -> customer."""
    rng = random.Random(seed_)
    now = int(time.time() * 1000)
    codes: dict[str, str] = {}
    gate = asyncio.Semaphore(64)

    async def one(number: int) -> None:
        state = seeded_state(number, now, rng)
        codes.update((code, state.key) for code in state.profile.get("offers", {}))
        links = {identifier_key(kind, value, secret): state.key
                 for kind, value in (("email", email_of(number)), ("loyalty_card", card_of(number)))}  # fmt: skip
        async with gate:
            await serving.link(links, {})
            await serving.publish(state, now)

    await asyncio.gather(*(one(number) for number in range(customers)))
    return codes


@dataclass
class Request:
    kind: str
    url: str
    expected: str  # the customer key (or coupon code) the answer must carry
    round_trips: int  # Redis commands the API sends for it


def plan_requests(base: str, customers: int, codes: dict[str, str], count: int, rng: random.Random) -> list[Request]:
    """30% lookup by email, 25% by loyalty_card, 25% by customer_id (both endpoints), 20% coupon checks."""
    out = []
    holders = set(codes.values())
    issued = sorted(codes)
    for _ in range(count):
        number = rng.randrange(customers)
        key = customer_of(number)
        summary_trips = 1 + (key in holders)  # GET the summary, then MGET its offers' coupons if it has any
        roll = rng.random()
        if roll < 0.30:
            url = f"{base}/v1/customers/lookup?kind=email&value={quote(email_of(number))}"
            out.append(Request("email", url, key, 1 + summary_trips))
        elif roll < 0.55:
            url = f"{base}/v1/customers/lookup?kind=loyalty_card&value={card_of(number)}"
            out.append(Request("loyalty_card", url, key, 1 + summary_trips))
        elif roll < 0.80:
            url = f"{base}/v1/customers/{key}" if rng.random() < 0.5 else (
                f"{base}/v1/customers/lookup?kind=customer_id&value={key}")  # fmt: skip
            out.append(Request("customer_id", url, key, summary_trips))
        else:
            code = rng.choice(issued)
            out.append(Request("coupon", f"{base}/v1/coupons/{code}", code, 1))
    return out


async def fire(session: aiohttp.ClientSession, requests: list[Request], concurrency: int,
               check: bool = False) -> tuple[float, list[int], Counter[int], int]:  # fmt: skip
    """All requests by `concurrency` workers; (seconds, sorted latencies ns, statuses, wrong answers)."""
    latencies: list[int] = []
    statuses: Counter[int] = Counter()
    wrong = 0
    queue = iter(requests)

    async def worker() -> None:
        nonlocal wrong
        clock = time.perf_counter_ns
        for request in queue:
            t0 = clock()
            async with session.get(request.url) as response:
                body = await response.read()
            latencies.append(clock() - t0)
            statuses[response.status] += 1
            if check and response.status == 200:
                answer = orjson.loads(body)
                got = answer.get("code") if request.kind == "coupon" else answer.get("customer")
                wrong += got != request.expected or (request.kind == "coupon" and answer.get("state") != "valid")

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - t0
    latencies.sort()
    return seconds, latencies, statuses, wrong


async def raw_gets(client: RedisClient, keys: list[str], concurrency: int) -> tuple[float, list[int]]:
    latencies: list[int] = []
    queue = iter(keys)

    async def worker() -> None:
        clock = time.perf_counter_ns
        for key in queue:
            t0 = clock()
            await client.get(key)
            latencies.append(clock() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - t0
    latencies.sort()
    return seconds, latencies


async def http_floor(body: bytes, count: int, concurrency: int) -> tuple[float, list[int], float]:
    """The same client against a bare aiohttp handler answering a fixed body: HTTP's own cost in this process."""

    async def fixed(_: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json", headers={"Cache-Control": "no-store"})

    app = web.Application()
    app.router.add_get("/fixed", fixed)
    runner = web.AppRunner(app, access_log=api_log)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/fixed"
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:
            await fire(session, [Request("fixed", url, "", 0)] * min(2_000, count), concurrency)
            p0 = time.process_time()
            seconds, latencies, _, _ = await fire(session, [Request("fixed", url, "", 0)] * count, concurrency)
            return seconds, latencies, (time.process_time() - p0) / seconds
    finally:
        await runner.cleanup()


async def bench_api(redis_url: str, prefix: str, args: argparse.Namespace) -> list[Figures]:
    token = uuid.uuid4().hex
    settings = Settings(redis_url=redis_url, redis_prefix=f"{prefix}api:", api_token=SecretStr(token))
    secret = settings.identity_secret.get_secret_value().encode()
    keys = Keys(settings.redis_prefix)
    rng = random.Random(args.seed + 1)

    seeder = connect_redis(redis_url)
    t0 = time.perf_counter()
    try:
        codes = await seed(Serving(seeder, keys), args.customers, args.seed, secret)
    finally:
        await seeder.aclose()
    seeded_s = time.perf_counter() - t0
    print(f"\n## (2) API: {args.customers:,} customers seeded ({len(codes):,} coupons) in {seeded_s:.1f} s; "
          f"{args.requests:,} requests at concurrency {args.concurrency}")  # fmt: skip

    client = connect(settings)  # as `orchestrator api` builds it
    runner = web.AppRunner(create_app(settings, client), access_log=api_log)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    base = f"http://127.0.0.1:{port}"
    baseline = connect_redis(redis_url)
    try:
        connector = aiohttp.TCPConnector(limit=args.concurrency)
        headers = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession(headers=headers, connector=connector) as session:
            # Warm-up, with every answer checked: right customer, right coupon, valid.
            check = plan_requests(base, args.customers, codes, min(2_000, args.requests), rng)
            _, _, check_statuses, wrong = await fire(session, check, args.concurrency, check=True)
            async with aiohttp.ClientSession() as anonymous, anonymous.get(f"{base}/v1/customers/c-000000") as response:
                no_token = response.status
            print(f"    warm-up {len(check):,} requests checked: statuses {dict(check_statuses)}, wrong answers "
                  f"{wrong}; without a token: {no_token}")  # fmt: skip
            async with session.get(f"{base}/v1/customers/{check[0].expected}") as response:
                sample = await response.read()

            requests = plan_requests(base, args.customers, codes, args.requests, rng)
            mix = Counter(r.kind for r in requests)
            gc.collect()
            p0 = time.process_time()
            seconds, latencies, statuses, _ = await fire(session, requests, args.concurrency)
            api_cpu = (time.process_time() - p0) / seconds

        summaries = [keys.customer(customer_of(rng.randrange(args.customers))) for _ in range(args.requests)]
        await raw_gets(baseline, summaries[:2_000], args.concurrency)  # warm-up: open the pool
        p0 = time.process_time()
        raw_seconds, raw_latencies = await raw_gets(baseline, summaries, args.concurrency)
        raw_cpu = (time.process_time() - p0) / raw_seconds

        floor_seconds, floor_latencies, floor_cpu = await http_floor(sample, args.requests, args.concurrency)
    finally:
        await baseline.aclose()
        await runner.cleanup()
        await client.aclose()

    errors = sum(v for k, v in statuses.items() if k != 200)
    trips = sum(r.round_trips for r in requests) / len(requests)
    api = Figures("API (aiohttp, in-process client)", len(requests), seconds, pct(latencies, 50) / 1e3,
                  pct(latencies, 99) / 1e3, trips, api_cpu,
                  f"401 rate {statuses[401] / len(requests):.0%}, errors {errors}", args.concurrency)  # fmt: skip
    raw = Figures("raw redis.asyncio GET", len(summaries), raw_seconds, pct(raw_latencies, 50) / 1e3,
                  pct(raw_latencies, 99) / 1e3, 1.0, raw_cpu, "", args.concurrency)  # fmt: skip
    floor = Figures(f"aiohttp alone (fixed {len(sample)} B answer, no Redis)", args.requests, floor_seconds,
                    pct(floor_latencies, 50) / 1e3, pct(floor_latencies, 99) / 1e3, 0.0, floor_cpu, "",
                    args.concurrency)  # fmt: skip
    print("    mix: " + ", ".join(f"{k} {v / len(requests):.0%}" for k, v in mix.most_common()))
    for fig in (api, raw, floor):
        print(f"\n  {fig.name}")
        print(f"    {fig.rate:,.0f} requests/s, p50 {fig.p50_us / 1e3:.2f} ms, p99 {fig.p99_us / 1e3:.2f} ms; "
              f"{fig.round_trips:.2f} Redis round trips/req; process CPU {fig.process_cpu:.0%} of wall")  # fmt: skip
    rate_401 = statuses[401] / len(requests)
    print(f"    API statuses {dict(statuses)}: 401 rate {rate_401:.2%}, errors (non-200) {errors}")
    print(
        f"\n  API / raw GET: {api.rate / raw.rate:.2f}x the throughput, p50 {api.p50_us / raw.p50_us:.1f}x, "
        f"p99 {api.p99_us / raw.p99_us:.1f}x; API / aiohttp alone: {api.rate / floor.rate:.2f}x the throughput"
    )
    return [api, raw, floor]


# --------------------------------------------------------------------------------- the report


async def drop(client: RedisClient, prefix: str) -> int:
    dropped = 0
    batch: list[bytes] = []
    async for key in client.scan_iter(match=f"{prefix}*", count=1_000):
        batch.append(key)
        if len(batch) >= 1_000:
            dropped += await client.unlink(*batch)
            batch = []
    if batch:
        dropped += await client.unlink(*batch)
    return dropped


def markdown(identity: list[Figures], api: list[Figures], header: str) -> str:
    p, n = identity
    a, r, f = api
    rows = [
        f"| Identity resolution, {p.name} | {p.rate:,.0f} events/s ({p.mean_us:.0f} µs/event) | {p.p50_us:.0f} µs | "
        f"{p.p99_us:.0f} µs | {p.round_trips:.2f} | {p.notes} |",
        f"| Identity resolution, {n.name} | {n.rate:,.0f} events/s ({n.mean_us:.0f} µs/event) | {n.p50_us:.0f} µs | "
        f"{n.p99_us:.0f} µs | {n.round_trips:.2f} | {n.notes}; pipelined = {p.rate / n.rate:.2f}x its events/s |",
        f"| {a.name}, concurrency {a.concurrency} | {a.rate:,.0f} req/s | {a.p50_us / 1e3:.2f} ms | "
        f"{a.p99_us / 1e3:.2f} ms | {a.round_trips:.2f} | {a.notes} |",
        f"| Floor: {r.name}, concurrency {r.concurrency} | {r.rate:,.0f} GET/s | {r.p50_us / 1e3:.2f} ms | "
        f"{r.p99_us / 1e3:.2f} ms | 1 | API = {a.rate / r.rate:.2f}x its throughput |",
        f"| Calibration: {f.name}, concurrency {f.concurrency} | {f.rate:,.0f} req/s | {f.p50_us / 1e3:.2f} ms | "
        f"{f.p99_us / 1e3:.2f} ms | 0 | API = {a.rate / f.rate:.2f}x its throughput |",
    ]
    return "\n".join([
        header, "",
        "| Stage | Throughput | p50 | p99 | Redis round trips / op | Notes |",
        "|---|---:|---:|---:|---:|---|",
        *rows,
    ])  # fmt: skip


async def run(args: argparse.Namespace) -> None:
    redis_url = args.redis_url or Settings().redis_url
    client = connect_redis(redis_url)
    prefix = f"bench:{uuid.uuid4().hex[:12]}:"
    try:
        info = await client.info("server")
        redis_version = info["redis_version"]
        try:
            aof = (await client.config_get("appendonly")).get("appendonly", "?")
        except redis.exceptions.ResponseError:  # CONFIG disabled (managed Redis)
            aof = "?"
        aof = aof.decode() if isinstance(aof, bytes) else aof
        cores = os.cpu_count() or 0
        usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
        header = (
            f"{dt.datetime.now().astimezone().isoformat(timespec='seconds')}; {cpu_model()}, {cores} cores "
            f"({usable} usable); Python {platform.python_version()}; Redis {redis_version} (appendonly {aof}) "
            f"on {redis_url} "
            f"(redis-py {version('redis')}, aiohttp {version('aiohttp')}); customers {args.customers:,}, "
            f"events {args.events:,}, requests {args.requests:,}, concurrency {args.concurrency}"
        )
        print(f"# serving bench  {header}\n  key prefix {prefix}")
        tune_gc()  # as the worker and the API process run
        started = time.perf_counter()
        identity = await bench_identity(client, prefix, args)
        api = await bench_api(redis_url, prefix, args)
        print(f"\n(total {time.perf_counter() - started:.0f} s)\n")
        print(markdown(identity, api, f"Measured {header}."))
    finally:
        dropped = await drop(client, prefix)
        left = sum([1 async for _ in client.scan_iter(match=f"{prefix}*", count=1_000)])
        print(f"\ncleanup: {dropped:,} keys under {prefix} deleted, {left} left")
        await client.aclose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.serving", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--redis-url", default=None, help="default: ORCH_REDIS_URL or redis://127.0.0.1:6379/0")
    args = parser.parse_args(argv)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
