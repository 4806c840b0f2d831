"""`GET /v1/products/{sku}/complementary` on the real Redis: a model written as the worker writes it
(`Serving.write_model`, the changed items only from the second version on), read through the API, equal to what the
engine's `recommend` answers for the item. Every test runs on the single Redis and on the Redis Cluster."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from orchestrator.engine.affinity import PERIOD_MS, Basket, Models, ModelSnapshot, boundary, model_version
from orchestrator.serving.connect import RedisClient, connect_redis
from orchestrator.serving.keys import MODEL_LIST_LIMIT, Keys
from orchestrator.serving.redis import Serving
from orchestrator.settings import Settings
from orchestrator.timefmt import parse_rfc3339, to_ms
from tests.integration.test_api import AUTH, TOKEN, Client, api, get, settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
__all__ = ["settings"]  # a fixture: pytest finds it here

HOUR = boundary(to_ms(parse_rfc3339("2026-03-02T10:00:00Z")))
FIRST = [("SNK-42", "SOCK-1", "BAG"), ("SNK-42", "SOCK-1"), ("BAG", "TEE-7"), ("BAG", "TEE-7"), ("BAG",), ("CAP-3",)]
LATER = [("SNK-42", "CAP-3"), ("SNK-42", "CAP-3"), ("SNK-42", "CAP-3"), ("TEE-7",)]  # SNK-42's list changes
SKUS = ("SNK-42", "SOCK-1", "BAG", "TEE-7", "CAP-3", "NEW-1")  # NEW-1: never bought


def fed(models: Models, baskets: list[tuple[str, ...]], ts: int, first: int = 0) -> None:
    for number, skus in enumerate(baskets, start=first):
        models.add(Basket(f"b-{number:03d}", ts, tuple(sorted(skus))))


async def publish(client: RedisClient, settings: Settings, models: Models) -> ModelSnapshot:
    """As the worker's publish: the lists that may have changed, the best sellers, the version."""
    snapshot = models.current
    serving = Serving(client, Keys(settings.redis_prefix))
    await serving.write_model(model_version(snapshot.version), snapshot.lists(sorted(models.changed())),
                              snapshot.best_sellers(MODEL_LIST_LIMIT))  # fmt: skip
    return snapshot


async def answers(http: Client, snapshot: ModelSnapshot, top: int | None) -> None:
    for sku in SKUS:
        params = {} if top is None else {"top": str(top)}
        found = await get(http, f"/v1/products/{sku}/complementary", 200, params=params)
        expected = snapshot.recommend([sku], (), 10 if top is None else top)
        assert found == {"sku": sku, "model_version": model_version(snapshot.version), "recommended": expected}


def run(settings: Settings, test: Any) -> None:
    async def go() -> None:
        client = connect_redis(settings.redis_url)  # closed by `api`
        async with api(settings, client) as http:
            await test(http, client)

    asyncio.run(go())


@pytest.mark.parametrize("kept", [200, 1])  # 1: SNK-42 drops SOCK-1 for CAP-3, SOCK-1's list empties
def test_the_api_serves_what_recommend_answers_for_the_item(settings: Settings, kept: int) -> None:
    async def test(http: Client, client: RedisClient) -> None:
        assert await get(http, "/v1/products/SNK-42/complementary", 404) == {
            "error": "no complementary-products model yet"
        }
        models = Models(kept)
        fed(models, FIRST, HOUR + 60_000)
        models.seal(HOUR + PERIOD_MS)
        first = await publish(client, settings, models)
        for top in (None, 1, 3, 50):
            await answers(http, first, top)
        found = await get(http, "/v1/products/SNK-42/complementary", 200)
        assert found["recommended"][0] == {"sku": "SOCK-1", "score": 1.0, "source": "affinity"}
        assert {entry["source"] for entry in found["recommended"][1:]} == {"popular"}
        unknown = await get(http, "/v1/products/NEW-1/complementary", 200, params={"top": "2"})
        assert unknown["recommended"] == [{"sku": "BAG", "score": 0.6667, "source": "popular"},
                                          {"sku": "SNK-42", "score": 0.3333, "source": "popular"}]  # fmt: skip

        fed(models, LATER, HOUR + PERIOD_MS + 60_000, first=len(FIRST))
        models.seal(HOUR + 2 * PERIOD_MS)
        later = await publish(client, settings, models)  # only the changed lists are rewritten
        assert later.neighbours("SNK-42") != first.neighbours("SNK-42")
        emptied = await client.get(Keys(settings.redis_prefix).model_neighbours("SOCK-1")) is None
        assert emptied == (kept == 1) and bool(first.neighbours("SOCK-1"))
        for top in (None, 2, 50):
            await answers(http, later, top)

    run(settings, test)


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/v1/products/SNK-42/complementary?top=0", "top must be a whole number from 1 to 50"),
        ("/v1/products/SNK-42/complementary?top=51", "top must be a whole number from 1 to 50"),
        ("/v1/products/SNK-42/complementary?top=abc", "top must be a whole number from 1 to 50"),
        ("/v1/products/SNK-42/complementary?top=+3", "top must be a whole number from 1 to 50"),
        ("/v1/products/SNK-42/complementary?top=", "top must be a whole number from 1 to 50"),
        (f"/v1/products/{'x' * 257}/complementary", "sku must be at most 256 characters"),
    ],
)
def test_bad_requests_are_400(settings: Settings, path: str, reason: str) -> None:
    async def test(http: Client, client: RedisClient) -> None:
        assert await get(http, path, 400) == {"error": reason}

    run(settings, test)


def test_the_endpoint_needs_the_token(settings: Settings) -> None:
    async def test(http: Client, client: RedisClient) -> None:
        models = Models()
        fed(models, FIRST, HOUR)
        models.seal(HOUR + PERIOD_MS)
        await publish(client, settings, models)
        for headers, reason in (({}, "missing"), ({"Authorization": f"Bearer {TOKEN}-not"}, "invalid")):
            response = await http.get("/v1/products/SNK-42/complementary", headers=headers)
            assert response.status == 401 and await response.json() == {"error": f"{reason} bearer token"}
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert (await http.get("/v1/products/SNK-42/complementary", headers=AUTH)).status == 200

    run(settings, test)
