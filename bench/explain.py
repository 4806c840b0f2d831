"""`explain` with a million customers' audit trails in Redis: how long one customer's answer takes.

    python -m bench.explain [--customers 1000000] [--lookups 2000] [--cli 5]

Against the real Redis of `scripts/services` (ORCH_REDIS_URL, default redis://127.0.0.1:6379/0), in a key prefix
of its own that it deletes at the end. It writes, as the worker does (`Serving.record`, pipelined): for each
customer a trail of 6 audit records (event, entered, step, sent, event, converted) and an email link in the
identity graph. Then, side by side in the same run:

  (A) explain's path: resolve `email=...` on the graph (one GET) + read the trail (one ZRANGE) + format the
      timeline, one customer at a time, random customers;
  (B) a bare Redis GET of one small key, one at a time: the floor a round trip sets on this machine.

It also times the `orchestrator explain --customer email=...` command end to end a few times (a new Python
process each: interpreter and imports included). A benchmark, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime

from bench.machine import cpu_model
from orchestrator.engine.identity import identifier_key
from orchestrator.measurement.explain import timelines
from orchestrator.serving.connect import RedisClient, connect_redis
from orchestrator.serving.keys import Keys
from orchestrator.serving.redis import Pending, Serving, Trail, find_customer, read_trail
from orchestrator.settings import Settings
from orchestrator.timefmt import format_ms

BATCH = 2000  # customers per pipeline while loading


def trail_of(customer: str, base: int) -> Trail:
    at = format_ms(base)
    return Trail(2, [
        (base, {"at": at, "customer": customer, "kind": "event", "event_id": f"{customer}-1", "type": "cart_add",
                "channel": "web"}),
        (base, {"at": at, "customer": customer, "kind": "entered", "journey": "abandoned-cart", "version": 1,
                "run": 1, "event_id": f"{customer}-1", "holdout": False}),
        (base, {"at": at, "customer": customer, "kind": "step", "journey": "abandoned-cart", "version": 1, "run": 1,
                "step": "steps.0", "type": "wait", "until": format_ms(base + 1_800_000)}),
        (base + 1_800_000, {"at": format_ms(base + 1_800_000), "customer": customer, "kind": "sent",
                            "journey": "abandoned-cart", "version": 1, "run": 1, "step": "reminder-email",
                            "channel": "email", "template": "cart-reminder", "action_id": uuid.uuid4().hex}),
        (base + 3_600_000, {"at": format_ms(base + 3_600_000), "customer": customer, "kind": "event",
                            "event_id": f"{customer}-2", "type": "purchase", "channel": "store"}),
        (base + 3_600_000, {"at": format_ms(base + 3_600_000), "customer": customer, "kind": "converted",
                            "journey": "abandoned-cart", "version": 1, "run": 1, "holdout": False,
                            "event_id": f"{customer}-2", "path": ["web", "store"]}),
    ])  # fmt: skip


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def load(redis: RedisClient, keys: Keys, secret: bytes, customers: int) -> float:
    serving = Serving(redis, keys)
    started = time.perf_counter()
    base = 1_795_000_000_000
    for first in range(0, customers, BATCH):
        pipe, pending = redis.pipeline(transaction=False), Pending()
        for number in range(first, min(customers, first + BATCH)):
            customer = f"c-{number:07d}"
            pending.trail(customer, trail_of(customer, base + number))
            pipe.set(keys.identifier(identifier_key("email", f"{customer}@example.com", secret)), customer)
        serving.stage(pipe, pending)
        await pipe.execute()
        if first % 100_000 == 0:
            print(f"  loaded {first:,} customers", file=sys.stderr, flush=True)
    return time.perf_counter() - started


async def measure(settings: Settings, customers: int, lookups: int) -> dict[str, float]:
    prefix = f"bench-{uuid.uuid4().hex[:6]}:"
    keys, secret = Keys(prefix), settings.identity_secret.get_secret_value().encode()
    redis = connect_redis(settings.redis_url)
    try:
        seconds = await load(redis, keys, secret, customers)
        memory = (await redis.info("memory"))["used_memory"]
        await redis.set(f"{prefix}floor", b"x")
        rng = random.Random(7)
        explain_ms, floor_ms = [], []
        for _ in range(lookups):
            customer = f"c-{rng.randrange(customers):07d}"
            started = time.perf_counter()
            found = await find_customer(redis, keys, "email", f"{customer}@example.com", secret)
            lines = list(timelines(await read_trail(redis, keys, found or "")))
            explain_ms.append((time.perf_counter() - started) * 1000)
            assert lines and found == customer
            started = time.perf_counter()
            await redis.get(f"{prefix}floor")
            floor_ms.append((time.perf_counter() - started) * 1000)
        return {"load_s": seconds, "memory_mib": memory / 2**20, "p50": statistics.median(explain_ms),
                "p99": percentile(explain_ms, 0.99), "floor_p50": statistics.median(floor_ms),
                "floor_p99": percentile(floor_ms, 0.99), "prefix": prefix}
    finally:
        print("  deleting the benchmark's keys ...", file=sys.stderr, flush=True)
        async for batch in _batches(redis, f"{prefix}*"):
            await redis.unlink(*batch)
        await redis.aclose()


async def _batches(redis: RedisClient, match: str):  # type: ignore[no-untyped-def]
    batch = []
    async for key in redis.scan_iter(match=match, count=10_000):
        batch.append(key)
        if len(batch) >= 10_000:
            yield batch
            batch = []
    if batch:
        yield batch


def cli_seconds(settings: Settings, runs: int) -> list[float]:
    """The command end to end on a trail written as the worker writes it (its own prefix, then deleted)."""
    prefix = f"bench-cli-{uuid.uuid4().hex[:6]}:"
    keys, secret = Keys(prefix), settings.identity_secret.get_secret_value().encode()

    async def write(remove: bool) -> None:
        redis = connect_redis(settings.redis_url)
        if remove:
            await redis.delete(keys.audit("c-cli"), keys.identifier(identifier_key("email", "cli@example.com", secret)))
        else:
            await Serving(redis, keys).record("c-cli", trail_of("c-cli", 1_795_000_000_000))
            await redis.set(keys.identifier(identifier_key("email", "cli@example.com", secret)), "c-cli")
        await redis.aclose()

    asyncio.run(write(False))
    env = {**os.environ, "ORCH_REDIS_PREFIX": prefix}
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        command = ["orchestrator", "explain", "--customer", "email=cli@example.com"]
        done = subprocess.run(command, capture_output=True, env=env, check=True)
        times.append(time.perf_counter() - started)
        assert b"converted" in done.stdout
    asyncio.run(write(True))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.explain", description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--cli", type=int, default=5, help="runs of the command end to end")
    args = parser.parse_args()
    settings = Settings()
    figures = asyncio.run(measure(settings, args.customers, args.lookups))
    cli = cli_seconds(settings, args.cli) if args.cli else []
    print(f"loaded {args.customers:,} customers' trails ({6 * args.customers:,} records) in {figures['load_s']:.0f} s;"
          f" Redis used {figures['memory_mib']:,.0f} MiB")  # fmt: skip
    print("| date | machine | customers in Redis | explain p50 | p99 | bare GET p50 | p99 | command (median) |")
    print("|---|---|--:|--:|--:|--:|--:|--:|")
    end_to_end = f"{statistics.median(cli) * 1000:.0f} ms" if cli else "not run"
    print(f"| {datetime.now(UTC):%Y-%m-%d} | {os.cpu_count()} cores {cpu_model()} | {args.customers:,} | "
          f"{figures['p50']:.2f} ms | {figures['p99']:.2f} ms | {figures['floor_p50']:.2f} ms | "
          f"{figures['floor_p99']:.2f} ms | {end_to_end} |")  # fmt: skip


if __name__ == "__main__":
    main()
