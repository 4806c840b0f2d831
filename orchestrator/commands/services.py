"""The `orchestrator` commands that run against Kafka and Redis: the worker, send and tail, the API, erasure,
explain and rebuild-serving (`orchestrator/commands/cli.py` adds them to the command group)."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import BinaryIO

import click
import orjson

from orchestrator.commands.common import (
    EXIT_INPUT,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    KIND,
    err,
    journeys_option,
    load_or_exit,
    read_settings,
    service_settings,
)
from orchestrator.measurement.explain import timelines
from orchestrator.serving.keys import TRAIL_LIMIT
from orchestrator.settings import MIN_API_TOKEN


@click.command()
@journeys_option
def worker(journeys_dir: Path | None) -> None:
    """Run the streaming worker (Faust) on Kafka until stopped with Ctrl-C or SIGTERM.

    Journeys are validated first: a bad file stops the start with the validator's messages.
    Every setting comes from ORCH_* environment variables (see docs/streaming.md).
    """
    settings = service_settings()
    from orchestrator.stream.admin import ArchiveConflict
    from orchestrator.stream.worker import run_worker

    loaded = load_or_exit([journeys_dir or settings.journeys_dir])
    err(f"worker {settings.app_id}: {len(loaded.journeys)} journey(s), Kafka {settings.kafka_bootstrap_servers}, "
         f"store {settings.store}, {settings.processing_guarantee}")  # fmt: skip
    try:
        run_worker(settings, loaded)
    except ArchiveConflict as exc:
        err(f"refusing to start: {exc}")
        raise SystemExit(EXIT_INPUT) from None


@click.command()
@click.argument("file", type=click.File("rb"))
@click.option("--topic", default=None, help="Topic (default: $ORCH_TOPIC_TOUCHPOINTS or touchpoints).")
def send(file: BinaryIO, topic: str | None) -> None:
    """Produce the events of FILE (JSON lines, '-' for stdin) to Kafka, keyed by customer.

    Lines are sent as they are, even invalid ones: the worker puts those on the dead-letter topic.
    """
    settings = read_settings()
    from orchestrator.stream.client import send_lines

    target = topic or settings.topic_touchpoints
    lines = file.readlines()
    with click.progressbar(length=len(lines), label=f"sending to {target}", file=sys.stderr) as bar:
        sent = asyncio.run(send_lines(settings, lines, target, bar.update))
    err(f"sent {sent} record(s) to {target} on {settings.kafka_bootstrap_servers}")


@click.command()
@click.argument("channels", nargs=-1)
@click.option("--from-beginning", is_flag=True, help="Start at the oldest action, not the newest.")
@click.option("--max", "limit", type=click.IntRange(min=1), default=None, help="Stop after this many actions.")
@click.option("--timeout", type=click.FloatRange(min=0), default=None, help="Stop after this many idle seconds.")
def tail(channels: tuple[str, ...], from_beginning: bool, limit: int | None, timeout: float | None) -> None:
    """Print actions as they arrive (JSON lines) from actions.<CHANNEL> topics, or all of them.

    Reads with isolation_level=read_committed, as every sender must.
    """
    settings = read_settings()
    from orchestrator.stream.client import tail_actions

    async def show() -> int:
        count = 0
        async for value in tail_actions(settings, channels, from_beginning=from_beginning, idle_timeout=timeout):
            sys.stdout.buffer.write(value + b"\n")
            sys.stdout.buffer.flush()
            count += 1
            if limit is not None and count >= limit:
                break
        return count

    shown = asyncio.run(show())
    err(f"{shown} action(s)")


@click.command()
def api() -> None:
    """Serve the HTTP API for stores and senders (customer lookup, offers, coupon checks) from Redis.

    Needs ORCH_API_TOKEN: every endpoint but /healthz wants `Authorization: Bearer <token>`.
    Listens on ORCH_API_HOST:ORCH_API_PORT (127.0.0.1:8080); the OpenAPI document is at /openapi.json.
    """
    settings = service_settings()
    from orchestrator.serving.api import run_api

    if settings.api_token is None or not settings.api_token.get_secret_value().strip():
        err("refusing to start: set ORCH_API_TOKEN (every endpoint needs a bearer token)")
        raise SystemExit(EXIT_INPUT)
    if len(settings.api_token.get_secret_value().strip()) < MIN_API_TOKEN:
        err(f"refusing to start: ORCH_API_TOKEN has fewer than {MIN_API_TOKEN} characters: use a random one "
            f"(`openssl rand -hex 32`)")
        raise SystemExit(EXIT_USAGE)
    err(f"API on http://{settings.api_host}:{settings.api_port} (Redis {settings.redis_url})")
    run_api(settings)


def _identity(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    pairs = {}
    for value in values:
        kind, sep, raw = value.partition("=")
        if not sep or not kind or not raw:
            raise click.BadParameter(f"{value!r}: write KIND=VALUE, e.g. email=anna@example.com")
        pairs[kind] = raw
    return pairs


@click.command()
@click.option("--customer", "customer_id", default=None, help="The customer_id to erase.")
@click.option(
    "--identity",
    "identities",
    multiple=True,
    callback=_identity,
    metavar="KIND=VALUE",
    help="Or find the customer by an identifier, e.g. --identity email=anna@example.com (repeatable).",
)
def forget(customer_id: str | None, identities: dict[str, str]) -> None:
    """Erase a customer (right to erasure): sends a `forget` event that the worker applies.

    The worker removes the profile, journey runs, pending timers, identity links, the Redis summary
    and offers, and writes tombstones so compacted changelogs forget too.
    """
    from orchestrator.stream.client import send_lines
    from orchestrator.timefmt import format_ms

    if customer_id is None and not identities:
        raise click.UsageError("name the customer: --customer ID or --identity KIND=VALUE")
    settings = read_settings()
    now = int(time.time() * 1000)
    event: dict[str, object] = {"event_id": f"forget-{now}", "type": "forget", "occurred_at": format_ms(now),
                                "channel": "system"}  # fmt: skip
    if customer_id is not None:
        event["customer_id"] = customer_id
    if identities:
        event["identities"] = identities
    asyncio.run(send_lines(settings, [orjson.dumps(event)], settings.topic_touchpoints))
    err(f"erasure requested ({event['event_id']}); the worker applies it in order with the customer's events")


def _who(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[str, str]:
    kind, sep, raw = value.partition("=")
    if sep and KIND.fullmatch(kind) and raw:
        return kind, raw
    if not value.strip():
        raise click.BadParameter("name a customer: a customer_id, or KIND=VALUE such as email=anna@example.com")
    return "customer_id", value


@click.command()
@click.option("--customer", "who", required=True, callback=_who, metavar="ID",
              help="A customer_id, or any identifier as KIND=VALUE: email=anna@example.com, anonymous_id=a-42.")
@click.option("--json", "as_json", is_flag=True, help="Print the audit records as JSON lines instead.")
@click.option("--limit", type=click.IntRange(1, TRAIL_LIMIT), default=TRAIL_LIMIT, show_default=True,
              help="At most this many of the newest records.")
def explain(who: tuple[str, str], as_json: bool, limit: int) -> None:
    """Why did (or didn't) this customer get a message? Their timeline: events, journeys entered, steps,
    sends, suppressions with the reason, exits, conversions, merges, as the worker decided them.

    Reads the audit trail the worker keeps in Redis (one lookup); exit 1 when there is none.
    """
    settings = read_settings()
    from redis.exceptions import RedisError  # here, as the serving modules: the offline commands start sooner

    from orchestrator.serving.connect import connect_redis
    from orchestrator.serving.keys import Keys
    from orchestrator.serving.redis import find_customer, read_trail

    kind, value = who

    async def read() -> tuple[str | None, list[dict[str, object]]]:
        redis = connect_redis(settings.redis_url, socket_timeout=5, socket_connect_timeout=5)
        try:
            keys, secret = Keys(settings.redis_prefix), settings.identity_secret.get_secret_value().encode()
            customer = await find_customer(redis, keys, kind, value, secret)
            return customer, (await read_trail(redis, keys, customer, limit) if customer else [])
        finally:
            await redis.aclose()

    try:
        customer, records = asyncio.run(read())
    except (OSError, RedisError) as exc:
        err(f"cannot read Redis at {settings.redis_url}: {exc}")
        raise SystemExit(EXIT_UNAVAILABLE) from None
    if not records:
        known = f" (customer {customer})" if customer else " (unknown identifier)"
        err(f"no audit records for {kind} {value!r}{known}")
        raise SystemExit(EXIT_INPUT)
    for line in (orjson.dumps(r).decode() for r in records) if as_json else timelines(records):
        click.echo(line)


@click.command("rebuild-serving")
def rebuild_serving() -> None:
    """Refill Redis (summaries, coupons, identity graph, KPI counters) from the worker's tables in Kafka."""
    settings = read_settings()
    from orchestrator.stream.rebuild import read_states, write_kpis, write_serving

    states = asyncio.run(read_states(settings))
    with click.progressbar(length=len(states), label="rebuilding Redis", file=sys.stderr) as bar:
        links = asyncio.run(write_serving(settings, states, bar.update))
    partitions = asyncio.run(write_kpis(settings))
    err(f"rebuilt {len(states)} customer(s) and {links} identifier link(s) in {settings.redis_url}, and the KPI "
         f"counters of {partitions} partition(s); audit trails are not rebuilt (their source is journeys.audit)")


COMMANDS = (worker, send, tail, api, forget, explain, rebuild_serving)
