"""Identity in event time on the real broker: people browse under a cookie, sign in (customer id, cookie, loyalty
card), then go on under the cookie alone and at the till under the card. Their sign-ins reach the worker last, yet
every record after a sign-in belongs to the known customer and every record before it to the anonymous one that
the sign-in merges: the worker publishes exactly `simulate`'s actions, on one worker or two, through a SIGKILL."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.integration.conftest import JOURNEYS, Stack, at
from tests.integration.oracle import expected_actions
from tests.integration.test_event_time import produce

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
CHANNELS = ["email", "push", "instore"]
PEOPLE = 30
LOGINS, WEB, STORE = 0, 1, 2  # the input partition each kind of record is produced to


def people(base: datetime) -> list[tuple[int, dict[str, Any]]]:
    log = []
    for i in range(PEOPLE):
        def event(kind: str, seconds: float, channel: str, i: int = i, **fields: Any) -> dict[str, Any]:
            return {"event_id": f"{kind}-{i}", "type": kind, "occurred_at": at(seconds + i / 100, base),
                    "channel": channel, "properties": fields.pop("properties", {}), **fields}  # fmt: skip

        cookie, card = {"anonymous_id": f"ck-{i}"}, {"identities": {"loyalty_card": f"L-{i}"}}
        log.append((WEB, event("page_view", 0, "web", **cookie)))
        log.append((LOGINS, event("login", 1, "app", customer_id=f"c-{i}", **cookie, **card)))
        log.append((WEB, event("cart_add", 2, "web", **cookie, properties={"sku": "SNK-42", "price": 40})))
        if i % 2 == 0:
            log.append((STORE, event("store_visit", 3, "store", properties={"store_id": "milano"}, **card)))
        if i % 3 == 0:
            log.append((STORE, event("purchase", 4, "pos", **card, properties={"order_id": f"o-{i}", "value": 40})))
    return log


def check(stack: Stack, log: list[tuple[int, dict[str, Any]]]) -> None:
    expected = expected_actions(JOURNEYS, [event for _, event in log])
    warm = {event["customer_id"] for _, event in log if event["event_id"].startswith("warm-")}
    known = {f"c-{i}" for i in range(PEOPLE)} | warm
    assert {a["customer_id"] for a in expected} <= known  # every action to a known one
    got = stack.actions(CHANNELS, until=len(expected), timeout=120, settle=5)
    assert Counter(a["action_id"] for a in got) == Counter(a["action_id"] for a in expected), (
        sorted((a["customer_id"], a["template"]) for a in got),
        sorted((a["customer_id"], a["template"]) for a in expected),
    )
    by_id = {a["action_id"]: a for a in expected}
    assert all(a == by_id[a["action_id"]] for a in got)  # the contents too


def sign_ins_last(stack: Stack, log: list[tuple[int, dict[str, Any]]], lag: float) -> None:
    produce(stack, [r for r in log if r[0] != LOGINS])
    time.sleep(lag)
    produce(stack, [r for r in log if r[0] == LOGINS])


def test_sign_ins_held_back_still_claim_the_cookie_and_the_card(stack: Stack) -> None:
    stack.start_worker()
    log = people(datetime.now(UTC) + timedelta(seconds=12))  # dated ahead: the lag is a live one
    sign_ins_last(stack, log, lag=5)
    check(stack, log)


def test_a_backfill_with_the_sign_ins_last_resolves_as_simulate(stack: Stack) -> None:
    stack.start_worker()
    log = people(datetime.now(UTC) - timedelta(days=20))
    sign_ins_last(stack, log, lag=0)
    check(stack, log)


def test_a_backfill_to_a_running_worker_resolves_as_simulate(stack: Stack) -> None:
    """The worker has taken today's events on every input partition (its watermark is at the wall clock), then a
    log is replayed: late everywhere. It is all on the broker before the worker reads any of it; the sign-ins'
    partition has earlier traffic to read first and the worker reads a few records a batch, so the cookie's and the
    card's records are read well before the sign-ins (ticks between): they wait for them all the same, and resolve
    and run as `simulate` says. (Before the late rule, 90 actions went to the anonymous visitors.)"""
    stack.env.update(ORCH_BATCH_SIZE="8", ORCH_MAX_POLL_RECORDS="8")  # the partitions are read in turns, ticks between
    worker = stack.start_worker()
    now, base = datetime.now(UTC), datetime.now(UTC) - timedelta(days=20)
    warm = [(p, {"event_id": f"warm-{p}", "type": "page_view", "occurred_at": at(0, now), "channel": "web",
                 "customer_id": f"w-{p}", "properties": {}}) for p in range(4)]  # fmt: skip
    produce(stack, warm)
    time.sleep(3)  # read and claimed: the input watermark is at the wall clock
    earlier = [(LOGINS, {"event_id": f"warm-{n}-old", "type": "page_view", "occurred_at": at(-3600 + n / 10, base),
                         "channel": "web", "customer_id": f"w-{n % 50}", "properties": {}}) for n in range(3000)]
    log = people(base)
    os.killpg(worker.pid, signal.SIGSTOP)
    try:
        produce(stack, earlier)
        sign_ins_last(stack, log, lag=0)
    finally:
        os.killpg(worker.pid, signal.SIGCONT)
    check(stack, warm + earlier + log)


def test_two_workers_one_killed_mid_burst_and_restarted(stack: Stack) -> None:
    stack.start_worker("w1")
    w2 = stack.start_worker("w2")
    stack.wait_for_log("w1", "timer index rebuilt", count=2)  # the partitions are shared
    log = people(datetime.now(UTC) + timedelta(seconds=15))
    produce(stack, [r for r in log if r[0] != LOGINS])
    stack.stop(w2, signal.SIGKILL)  # what it held in memory is read again by whoever owns its partitions next
    produce(stack, [r for r in log if r[0] == LOGINS])
    stack.start_worker("w2", wait=False)
    check(stack, log)
