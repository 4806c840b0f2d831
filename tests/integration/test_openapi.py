"""`/openapi.json` against the API it describes, on the real Redis: every route served is documented, and every
documented answer (each route, each status) is produced for real and checked against its documented schema
(`jsonschema`, strictly: no undocumented field anywhere) and its pydantic model.

The data is the documented key schema of test_api.py's `seed`, plus a customer the engine ran through the real
journeys and the worker's own `Serving` wrote: summary, coupons, audit trail, KPI counts, step order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
import pytest
import redis.asyncio
from pydantic import BaseModel

from orchestrator.engine.affinity import PERIOD_MS, Basket, Models, model_version
from orchestrator.engine.identity import identifier_key
from orchestrator.measurement.report import kpis_of
from orchestrator.serving.api import ROUTES, connect, openapi_document
from orchestrator.serving.connect import connect_redis
from orchestrator.serving.keys import Keys
from orchestrator.serving.redis import Serving, Trail
from orchestrator.serving.schemas import body
from orchestrator.settings import Settings
from orchestrator.timefmt import parse_rfc3339, to_ms
from tests.api_contract import (
    WORKER_CUSTOMER,
    WORKER_EMAIL,
    body_problems,
    engine_customer,
    offers,
    route_problems,
    template_of,
)
from tests.integration.test_api import (  # the fixture and helpers of the API's tests
    ANON_CUSTOMER,
    AUTH,
    CUSTOMER,
    EXPIRED,
    GONE,
    REDEEMED,
    TOKEN,
    VALID,
    Client,
    api,
    free_port,
    seed,
    settings,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
__all__ = ["settings"]  # a fixture: pytest finds it here

CORRUPT, CORRUPT_COUPON = "c-corrupt", "BAD0-0000-0000-0001"
WRONG = {"Authorization": "Bearer wrong-token"}


async def publish_like_the_worker(client: redis.asyncio.Redis, settings: Settings) -> list[str]:
    """`WORKER_CUSTOMER` as the worker writes it, with its e-mail linked; returns its coupon codes."""
    engine, simulator = engine_customer(datetime.now(UTC))
    state = simulator.result.states[WORKER_CUSTOMER]
    serving = Serving(client, Keys(settings.redis_prefix))
    secret = settings.identity_secret.get_secret_value().encode()
    await serving.write_step_order(engine.step_order())
    await serving.write_partitions(4)
    await serving.write_segments(sorted(engine.segments))
    await serving.link({identifier_key("email", WORKER_EMAIL, secret): state.key}, {})
    trail = Trail(sum(state.profile["events"].values()),
                  [(to_ms(parse_rfc3339(r["at"])), r) for r in simulator.result.audit])  # fmt: skip
    await serving.publish(state, to_ms(datetime.now(UTC)), trail, (0, dict(kpis_of(simulator.result).counts)))
    return list(offers(simulator))


async def write_model_like_the_worker(client: redis.asyncio.Redis, settings: Settings) -> None:
    """A complementary-products model as the worker writes a version of it (`Serving.write_model`)."""
    models = Models()
    for number, skus in enumerate([("SNK-42", "SOCK-1"), ("SNK-42", "SOCK-1", "BAG"), ("BAG",)]):
        models.add(Basket(f"b-{number}", to_ms(datetime.now(UTC)) - PERIOD_MS, skus))
    snapshot = models.at(to_ms(datetime.now(UTC)))
    await Serving(client, Keys(settings.redis_prefix)).write_model(
        model_version(snapshot.version), snapshot.lists(models.changed()), snapshot.best_sellers()
    )


async def corrupt(client: redis.asyncio.Redis, settings: Settings) -> None:
    """Values the API cannot read: each Redis-reading route answers 500."""
    keys = Keys(settings.redis_prefix)
    await client.set(keys.model_neighbours(CORRUPT), b'[{"sku": "A", "score": "high"}]')
    await client.set(keys.customer(CORRUPT), b"{not json")
    await client.zadd(keys.audit(CORRUPT), {b"0000000000.00000 {not json": 1})
    await client.set(keys.coupon(CORRUPT_COUPON), b"[1, 2]")
    await client.hset(keys.kpis(3), "j\x1fx\x1fentered", "not a count")  # a partition the worker said it has


@dataclass(frozen=True)
class Call:
    method: str
    url: str
    status: int
    headers: Mapping[str, str] | None = None  # None: the token
    form: Mapping[str, str] | None = None


def calls(codes: list[str]) -> list[Call]:
    """Answers with the seeded data: every status but 500 and 503."""
    long = "c" * 257
    return [
        Call("GET", "/v1/customers/lookup?kind=email&value=ada.lovelace%40example.com", 200),
        Call("GET", f"/v1/customers/lookup?kind=email&value={WORKER_EMAIL}", 200),
        Call("GET", "/v1/customers/lookup?kind=Email&value=x", 400),
        Call("GET", "/v1/customers/lookup?kind=email&value=nobody%40example.com", 404),
        Call("GET", "/v1/customers/lookup?kind=email&value=x", 401, {}),
        Call("GET", f"/v1/customers/{CUSTOMER}", 200),
        Call("GET", f"/v1/customers/{WORKER_CUSTOMER}", 200),
        Call("GET", f"/v1/customers/{ANON_CUSTOMER}", 200),
        Call("GET", f"/v1/customers/{long}", 400),
        Call("GET", "/v1/customers/c-404", 404),
        Call("GET", f"/v1/customers/{CUSTOMER}", 401, WRONG),
        Call("GET", f"/v1/customers/{WORKER_CUSTOMER}/timeline", 200),
        Call("GET", f"/v1/customers/{long}/timeline", 400),
        Call("GET", f"/v1/customers/{CUSTOMER}/timeline", 404),
        Call("GET", f"/v1/customers/{WORKER_CUSTOMER}/timeline", 401, {}),
        *[Call("GET", f"/v1/coupons/{code}", 200) for code in [VALID, EXPIRED, REDEEMED, *codes]],
        Call("GET", "/v1/coupons/k7qm-3xdp-9w2a-hf4t", 400),
        Call("GET", f"/v1/coupons/{GONE}", 404),
        Call("GET", f"/v1/coupons/{VALID}", 401, {}),
        Call("GET", "/v1/products/SNK-42/complementary", 200),
        Call("GET", "/v1/products/NEW-1/complementary?top=3", 200),  # an item the model does not know: best sellers
        Call("GET", "/v1/products/SNK-42/complementary?top=51", 400),
        Call("GET", "/v1/products/SNK-42/complementary", 401, WRONG),
        Call("GET", "/v1/kpis", 200),
        Call("GET", "/v1/kpis", 401, WRONG),
        Call("GET", "/v1/segments", 200),
        Call("GET", "/v1/segments", 401, WRONG),
        Call("GET", "/dashboard", 200),
        Call("GET", "/dashboard", 303, {}),
        Call("GET", "/dashboard", 401, WRONG),
        Call("GET", "/login", 200, {}),
        Call("POST", "/login", 303, {}, {"token": TOKEN}),
        Call("POST", "/login", 401, {}, {"token": "wrong"}),
        Call("POST", "/logout", 303, {}),
        Call("GET", "/openapi.json", 200),
        Call("GET", "/openapi.json", 401, {}),
        Call("GET", "/healthz", 200, {}),
    ]


def failing(status: int) -> list[Call]:
    """500 on corrupt values, 503 with Redis down: every route that reads Redis."""
    customer = CORRUPT if status == 500 else CUSTOMER
    found = [
        Call("GET", f"/v1/customers/lookup?kind=customer_id&value={customer}", status),
        Call("GET", f"/v1/customers/{customer}", status),
        Call("GET", f"/v1/customers/{customer}/timeline", status),
        Call("GET", f"/v1/coupons/{CORRUPT_COUPON if status == 500 else VALID}", status),
        Call("GET", f"/v1/products/{customer}/complementary", status),
        Call("GET", "/v1/kpis", status),
        Call("GET", "/v1/segments", status),
        Call("GET", "/dashboard", status),
    ]
    return [*found, Call("GET", "/healthz", 503, {})] if status == 503 else found


async def answer(http: Client, call: Call, document: dict[str, object]) -> tuple[str, str, int]:
    """Make the call, check its answer against the document and the model; (method, path template, status)."""
    headers = AUTH if call.headers is None else call.headers
    response = await http.request(call.method, call.url, headers=headers, data=call.form, allow_redirects=False)
    raw = await response.read()
    assert response.status == call.status, (call, raw[:300])
    template = template_of(document, response.url.path)
    assert body_problems(document, call.method, template, response.status, response.content_type, raw) == []
    route = next(r for r in ROUTES if (r.method, r.path) == (call.method, template))
    documented = route.answers[response.status]
    for header in documented.headers:
        assert header in response.headers, (call, header)
    if documented.model is not None:  # the model accepts the answer and gives it back unchanged
        loaded = orjson.loads(raw)
        model: BaseModel = documented.model.model_validate(loaded)
        assert body(model) == loaded, call
    return call.method, template, response.status


def test_every_route_served_is_documented(settings: Settings) -> None:
    async def go() -> None:
        async with api(settings) as http:
            served = orjson.loads(await (await http.get("/openapi.json", headers=AUTH)).read())
            assert served == orjson.loads(orjson.dumps(openapi_document()))
            assert route_problems(http.app, served) == []

    asyncio.run(go())


def test_every_documented_answer_is_served_as_documented(settings: Settings) -> None:
    document = openapi_document()
    expected = {(r.method, r.path, status) for r in ROUTES for status in r.answers}
    seen: set[tuple[str, str, int]] = set()

    async def go() -> None:
        client = connect_redis(settings.redis_url)  # the single Redis, or the cluster (see test_api.py)
        await seed(client, settings)
        codes = await publish_like_the_worker(client, settings)
        async with api(settings, client) as http:
            seen.add(await answer(http, Call("GET", "/v1/products/SNK-42/complementary", 404), document))  # no model
            await write_model_like_the_worker(client, settings)
            for call in calls(codes):
                seen.add(await answer(http, call, document))
            await corrupt(client, settings)
            for call in failing(500):
                seen.add(await answer(http, call, document))
        down = connect(settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"}))
        async with api(settings, down) as http:
            for call in failing(503):
                seen.add(await answer(http, call, document))

    asyncio.run(go())
    assert seen == expected  # each route, each documented status, answered for real and checked
