"""The HTTP API (`orchestrator.serving.api`) against the real Redis, seeded in the documented key schema.

Each test gets its own key prefix and deletes its keys after; the API runs in-process on aiohttp's test server.
Every test runs twice: on the single Redis and on the three-node Redis Cluster (`any_redis_url`).
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import redis
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from orchestrator.engine.identity import identifier_key
from orchestrator.serving.api import connect, create_app, run_api
from orchestrator.serving.connect import RedisClient, connect_redis, is_cluster_url
from orchestrator.serving.guard import BODY_SECONDS, FAILURES_ALLOWED, SECURITY_HEADERS, SESSION_SECONDS
from orchestrator.serving.keys import COUPON_GRACE_SECONDS, Keys
from orchestrator.settings import Settings
from tests.integration.conftest import redis_client

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

TOKEN = "test-token-" + uuid.uuid4().hex
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SECRET = "api-test-identity-secret"  # not the default: the API must hash with the configured secret

CUSTOMER = "c-1001"
ANON_CUSTOMER = "anon:web-zzz"
VALID, EXPIRED, REDEEMED = "K7QM-3XDP-9W2A-HF4T", "EXP1-RED0-0000-0001", "RDM0-0000-0000-0002"
GONE = "GONE-0000-0000-0003"  # listed in the summary, key lapsed
IDENTITIES = [
    ("email", "Ada.Lovelace@Example.com"),
    ("phone", "+44 7700 900123"),
    ("loyalty_card", "LC-000123"),
    ("device_id", "ios-7f3a"),
]
ANONYMOUS_ID = "web-abc"

Client = TestClient[web.Request, web.Application]


def rfc3339(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


@pytest.fixture
def settings(any_redis_url: str) -> Iterator[Settings]:
    """Settings with a prefix of this test's own, on the single Redis or the cluster; its keys are deleted after
    (SCAN: on the cluster, every primary)."""
    prefix = f"test-{uuid.uuid4().hex}:"
    client = redis_client(any_redis_url)
    try:
        try:
            client.ping()
        except (redis.exceptions.ConnectionError, redis.exceptions.RedisClusterException) as error:
            pytest.fail(f"Redis at {any_redis_url} does not answer ({error}): run scripts/services up (or cluster up)")
        yield Settings(
            redis_url=any_redis_url, redis_prefix=prefix, identity_secret=SecretStr(SECRET), api_token=SecretStr(TOKEN)
        )
        stale = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if stale:
            client.delete(*stale)
    finally:
        client.close()


async def seed(client: RedisClient, settings: Settings) -> None:
    """A known customer with every kind of identifier and coupons in each state; an anonymous customer; a dangling
    link (an identifier whose customer has no summary)."""
    keys = Keys(settings.redis_prefix)
    secret = settings.identity_secret.get_secret_value().encode()
    now = datetime.now(UTC)
    identifiers = [identifier_key(kind, value, secret) for kind, value in IDENTITIES]
    identifiers.append(f"anonymous_id:{ANONYMOUS_ID}")
    pipe = client.pipeline(transaction=False)
    for identifier in identifiers:
        pipe.set(keys.identifier(identifier), CUSTOMER)
        pipe.sadd(keys.identifiers_of(CUSTOMER), identifier)
    summary = {
        "customer_id": CUSTOMER,
        "traits": {"first_name": "Ada", "tier": "gold"},
        "lifetime_value": 420.5,
        "orders": 3,
        "last_store_id": "store-7",
        "last_channel": "web",
        "last_seen_at": rfc3339(now - timedelta(hours=2)),
        "cart": [{"sku": "SKU-1", "price": 49.9, "quantity": 1}],  # as the worker writes a cart line
        "cart_value": 49.9,
        "consent": {"email": True, "sms": False},
        "channels": ["email", "web"],
        "offers": [VALID, REDEEMED, GONE],  # written before the redemption; GONE's key has since lapsed
        "updated_at": rfc3339(now),
    }
    pipe.set(keys.customer(CUSTOMER), orjson.dumps(summary))

    pipe.set(keys.identifier(f"anonymous_id:{ANON_CUSTOMER.removeprefix('anon:')}"), ANON_CUSTOMER)
    anon_summary = {**summary, "customer_id": ANON_CUSTOMER, "traits": {}, "orders": 0, "offers": []}
    pipe.set(keys.customer(ANON_CUSTOMER), orjson.dumps(anon_summary))

    pipe.set(keys.identifier(identifier_key("email", "dangling@example.com", secret)), "c-without-summary")

    def coupon(code: str, expires: datetime, **extra: Any) -> None:
        record = {
            "code": code, "customer": CUSTOMER, "journey": "welcome", "action_id": uuid.uuid4().hex,
            "discount_percent": 15, "issued_at": rfc3339(now - timedelta(days=1)), "expires_at": rfc3339(expires),
            "status": "issued", **extra,
        }  # fmt: skip
        ttl = max(1, int((expires - now).total_seconds()) + COUPON_GRACE_SECONDS)
        pipe.set(keys.coupon(code), orjson.dumps(record), ex=ttl)

    coupon(VALID, now + timedelta(days=7))
    coupon(EXPIRED, now - timedelta(hours=1))
    coupon(REDEEMED, now - timedelta(hours=1), status="redeemed", redeemed_at=rfc3339(now - timedelta(hours=3)),
           store_id="store-7", order_id="o-55")  # fmt: skip
    await pipe.execute()


@asynccontextmanager
async def api(settings: Settings, unseeded: RedisClient | None = None) -> AsyncIterator[Client]:
    """The app on a seeded Redis (or on the client `unseeded`), served on a local port."""
    own = unseeded is None
    client = connect_redis(settings.redis_url) if unseeded is None else unseeded
    try:
        if own:
            await seed(client, settings)
        async with TestClient(TestServer(create_app(settings, client))) as http:
            yield http
    finally:
        await client.aclose()


def run(settings: Settings, body: Callable[[Client], Awaitable[None]]) -> None:
    async def go() -> None:
        async with api(settings) as http:
            await body(http)

    asyncio.run(go())


async def get(
    http: Client, path: str, status: int, headers: Mapping[str, str] | None = None, params: Mapping[str, str] = {}
) -> dict[str, Any]:
    response = await http.get(path, params=params, headers=AUTH if headers is None else headers)
    text = await response.text()
    assert response.status == status, (path, params, text)
    assert response.content_type == "application/json", text
    loaded: dict[str, Any] = orjson.loads(text)
    return loaded


async def lookup(http: Client, status: int, kind: str, value: str) -> dict[str, Any]:
    return await get(http, "/v1/customers/lookup", status, params={"kind": kind, "value": value})


# ------------------------------------------------------------------ authentication

PROTECTED = [
    "/v1/customers/lookup?kind=email&value=ada.lovelace%40example.com",
    "/v1/customers/lookup?kind=customer_id&value=c-1001",
    f"/v1/customers/{CUSTOMER}",
    f"/v1/coupons/{VALID}",
    "/openapi.json",
    f"/v1/customers/{CUSTOMER}/timeline",
    "/v1/kpis",
    "/v1/segments",
    "/v1/products/SKU-1/complementary",
    "/v1/no-such-path",
]


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing"),
        ({"Authorization": "Bearer "}, "missing"),
        ({"Authorization": TOKEN}, "missing"),  # no scheme
        ({"Authorization": f"Basic {TOKEN}"}, "missing"),
        ({"Authorization": "Bearer wrong-token"}, "invalid"),
        ({"Authorization": f"Bearer {TOKEN}x"}, "invalid"),
        ({"Authorization": f"Bearer {TOKEN[:-1]}"}, "invalid"),
        ({"Authorization": "Bearer tøken"}, "invalid"),
    ],
)
def test_every_endpoint_but_health_needs_the_token(settings: Settings, headers: dict[str, str], reason: str) -> None:
    async def body(http: Client) -> None:
        for path in PROTECTED:
            response = await http.get(path, headers=headers)
            text = await response.text()
            assert response.status == 401, (path, text)
            assert response.headers["WWW-Authenticate"].startswith("Bearer"), path
            assert ('error="invalid_token"' in response.headers["WWW-Authenticate"]) == (reason == "invalid")
            assert orjson.loads(text) == {"error": f"{reason} bearer token"}
            for secret in (CUSTOMER, "Ada", VALID, "openapi", "store-7"):
                assert secret not in text

    run(settings, body)


def test_the_scheme_is_case_insensitive(settings: Settings) -> None:
    async def body(http: Client) -> None:
        found = await get(http, f"/v1/customers/{CUSTOMER}", 200, {"Authorization": f"bearer {TOKEN}"})
        assert found["customer"] == CUSTOMER

    run(settings, body)


def test_without_a_token_the_api_refuses_to_start(any_redis_url: str) -> None:
    for token in (None, SecretStr(""), SecretStr("  ")):
        settings = Settings(api_token=token, redis_url=any_redis_url)
        with pytest.raises(ValueError, match="ORCH_API_TOKEN"):
            run_api(settings)

        async def build(settings: Settings = settings) -> None:
            client = connect_redis(settings.redis_url)
            try:
                with pytest.raises(ValueError, match="ORCH_API_TOKEN"):
                    create_app(settings, client)
            finally:
                await client.aclose()

        asyncio.run(build())


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"value": "a@example.com"}, "kind is required"),
        ({"kind": "email"}, "value is required"),
        ({"kind": "", "value": "a@example.com"}, "kind must match"),
        ({"kind": "Email", "value": "a@example.com"}, "kind must match"),
        ({"kind": "e-mail", "value": "a@example.com"}, "kind must match"),
        ({"kind": "email ", "value": "a@example.com"}, "kind must match"),
        ({"kind": "k" * 65, "value": "a@example.com"}, "kind must match"),
        ({"kind": "email", "value": ""}, "value must not be empty"),
        ({"kind": "email", "value": "   "}, "value must not be empty"),
        ({"kind": "email", "value": "a" * 257}, "at most 256"),
        ({"kind": "customer_id", "value": "c" * 257}, "at most 256"),
    ],
)
def test_lookup_validates_its_input(settings: Settings, params: dict[str, str], reason: str) -> None:
    async def body(http: Client) -> None:
        found = await get(http, "/v1/customers/lookup", 400, params=params)
        assert reason in found["error"]
        assert set(found) == {"error"}

    run(settings, body)


@pytest.mark.parametrize(
    "code",
    ["k7qm-3xdp-9w2a-hf4t", "K7QM-3XDP-9W2A", "K7QM_3XDP_9W2A_HF4T", "K7QM-3XDP-9W2A-HF4T-0000", "K7QM3XDP9W2AHF4T"],
)
def test_coupon_codes_are_validated(settings: Settings, code: str) -> None:
    async def body(http: Client) -> None:
        found = await get(http, f"/v1/coupons/{code}", 400)
        assert "code must look like" in found["error"]

    run(settings, body)


def test_customer_keys_are_validated(settings: Settings) -> None:
    async def body(http: Client) -> None:
        found = await get(http, "/v1/customers/" + "c" * 257, 400)
        assert "at most 256" in found["error"]

    run(settings, body)


# ------------------------------------------------------------------ customers


def assert_is_ada(found: dict[str, Any]) -> None:
    assert found["customer"] == CUSTOMER
    assert found["summary"]["customer_id"] == CUSTOMER
    assert found["summary"]["traits"] == {"first_name": "Ada", "tier": "gold"}
    assert found["summary"]["lifetime_value"] == 420.5
    states = {offer["code"]: offer["state"] for offer in found["offers"]}
    assert states == {VALID: "valid", REDEEMED: "redeemed", GONE: "unknown"}
    valid = next(offer for offer in found["offers"] if offer["code"] == VALID)
    assert valid["discount_percent"] == 15 and valid["journey"] == "welcome" and valid["status"] == "issued"


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("customer_id", CUSTOMER),
        ("anonymous_id", ANONYMOUS_ID),
        ("email", "Ada.Lovelace@Example.com"),
        ("email", "ada.lovelace@example.com"),
        ("email", "  ADA.LOVELACE@EXAMPLE.COM\t"),
        ("phone", "+44 7700 900123"),
        ("phone", "0044 (7700) 900-123"),
        ("phone", "+447700900123"),
        ("loyalty_card", "LC-000123"),
        ("loyalty_card", " LC-000123 "),
        ("device_id", "ios-7f3a"),
    ],
)
def test_lookup_by_every_identifier_kind(settings: Settings, kind: str, value: str) -> None:
    async def body(http: Client) -> None:
        assert_is_ada(await lookup(http, 200, kind, value))

    run(settings, body)


def test_lookup_of_an_anonymous_customer(settings: Settings) -> None:
    async def body(http: Client) -> None:
        found = await lookup(http, 200, "anonymous_id", "web-zzz")
        assert found["customer"] == ANON_CUSTOMER and found["offers"] == []
        by_key = await get(http, f"/v1/customers/{ANON_CUSTOMER}", 200)
        assert by_key == found

    run(settings, body)


def test_customer_by_key(settings: Settings) -> None:
    async def body(http: Client) -> None:
        found = await get(http, f"/v1/customers/{CUSTOMER}", 200)
        assert_is_ada(found)
        assert found == await lookup(http, 200, "customer_id", CUSTOMER)

    run(settings, body)


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("customer_id", "c-404"),
        ("anonymous_id", "web-404"),
        ("anonymous_id", " web-abc"),  # anonymous ids are kept raw, not trimmed
        ("email", "nobody@example.com"),
        ("email", "dangling@example.com"),  # linked, but its customer has no summary
        ("phone", "+44 7700 900124"),
        ("loyalty_card", "LC-000124"),
        ("device_id", "LC-000123"),  # a known value under another kind
        ("customer_id", "ada.lovelace@example.com"),
    ],
)
def test_unknown_customers_are_404(settings: Settings, kind: str, value: str) -> None:
    async def body(http: Client) -> None:
        assert await lookup(http, 404, kind, value) == {"error": "unknown customer"}

    run(settings, body)


def test_unknown_customer_key_is_404(settings: Settings) -> None:
    async def body(http: Client) -> None:
        assert await get(http, "/v1/customers/c-404", 404) == {"error": "unknown customer"}
        assert await get(http, "/v1/customers/c-without-summary", 404) == {"error": "unknown customer"}

    run(settings, body)


def test_the_hash_uses_the_configured_secret(settings: Settings) -> None:
    other = settings.model_copy(update={"identity_secret": SecretStr("another-secret")})

    async def go() -> None:
        client = connect_redis(settings.redis_url)
        await seed(client, settings)  # linked with SECRET
        async with api(other, client) as http:
            await lookup(http, 404, "email", "ada.lovelace@example.com")
            await lookup(http, 200, "anonymous_id", ANONYMOUS_ID)  # not hashed

    asyncio.run(go())


def test_only_safe_traits_are_served(settings: Settings) -> None:
    async def body(http: Client) -> None:
        keys = Keys(settings.redis_prefix)
        client = connect_redis(settings.redis_url)
        try:
            stored = orjson.loads(await client.get(keys.customer(CUSTOMER)) or b"")
            stored["traits"] |= {"email": "ada@example.com", "phone": "+447700900123", "address": "12 St James's Sq"}
            await client.set(keys.customer(CUSTOMER), orjson.dumps(stored))
        finally:
            await client.aclose()
        found = await get(http, f"/v1/customers/{CUSTOMER}", 200)
        assert found["summary"]["traits"] == {"first_name": "Ada", "tier": "gold"}

    run(settings, body)


def test_a_client_decoding_responses_works_too(settings: Settings) -> None:
    async def go() -> None:
        async with api(settings) as _:  # seeds
            pass
        client = connect_redis(settings.redis_url, decode_responses=True)
        async with api(settings, client) as http:
            assert_is_ada(await lookup(http, 200, "email", "ada.lovelace@example.com"))
            assert (await get(http, f"/v1/coupons/{VALID}", 200))["state"] == "valid"

    asyncio.run(go())


# ------------------------------------------------------------------ coupons


def test_coupon_states(settings: Settings) -> None:
    async def body(http: Client) -> None:
        valid = await get(http, f"/v1/coupons/{VALID}", 200)
        assert valid["code"] == VALID and valid["state"] == "valid"
        assert valid["customer"] == CUSTOMER and valid["discount_percent"] == 15 and valid["status"] == "issued"
        assert {"journey", "action_id", "issued_at", "expires_at"} <= set(valid)

        expired = await get(http, f"/v1/coupons/{EXPIRED}", 200)
        assert expired["state"] == "expired" and expired["status"] == "issued"

        redeemed = await get(http, f"/v1/coupons/{REDEEMED}", 200)  # redeemed, and since expired: still redeemed
        assert redeemed["state"] == "redeemed"
        assert redeemed["store_id"] == "store-7" and redeemed["order_id"] == "o-55" and "redeemed_at" in redeemed

        unknown = await get(http, f"/v1/coupons/{GONE}", 404)
        assert unknown == {"code": GONE, "state": "unknown", "error": "unknown coupon"}

    run(settings, body)


def test_a_coupon_expires_at_its_expiry_to_the_second(settings: Settings) -> None:
    async def go() -> None:
        client = connect_redis(settings.redis_url)
        keys = Keys(settings.redis_prefix)
        now = datetime.now(UTC)
        for code, expires_at in (("EDGE-0000-0000-0001", rfc3339(now)), ("EDGE-0000-0000-0002", "not a time")):
            record = {"code": code, "customer": CUSTOMER, "expires_at": expires_at, "status": "issued"}
            await client.set(keys.coupon(code), orjson.dumps(record), ex=60)
        async with api(settings, client) as http:
            assert (await get(http, "/v1/coupons/EDGE-0000-0000-0001", 200))["state"] == "expired"
            assert (await get(http, "/v1/coupons/EDGE-0000-0000-0002", 200))["state"] == "expired"  # undated

    asyncio.run(go())


# ------------------------------------------------------------------ OpenAPI, health, errors


def test_openapi_document(settings: Settings) -> None:
    async def body(http: Client) -> None:
        document = await get(http, "/openapi.json", 200)
        assert document["openapi"].startswith("3.1")
        assert set(document["paths"]) == {
            "/v1/customers/lookup", "/v1/customers/{customer}", "/v1/coupons/{code}", "/openapi.json", "/healthz",
            "/v1/customers/{customer}/timeline", "/v1/kpis", "/dashboard", "/login", "/v1/products/{sku}/complementary",
            "/v1/segments", "/logout",
        }  # fmt: skip
        assert document["components"]["securitySchemes"]["bearerAuth"] == {
            "type": "http", "scheme": "bearer", "description": "the value of ORCH_API_TOKEN",
        }  # fmt: skip
        assert document["security"] == [{"bearerAuth": []}]
        assert document["paths"]["/healthz"]["get"]["security"] == []
        lookup = document["paths"]["/v1/customers/lookup"]["get"]
        assert {p["name"] for p in lookup["parameters"]} == {"kind", "value"}
        assert {"200", "400", "401", "404"} <= set(lookup["responses"])
        top = document["paths"]["/v1/products/{sku}/complementary"]["get"]["parameters"][1]
        assert top["name"] == "top" and top["required"] is False and top["schema"]["maximum"] == 50
        refs = orjson.dumps(document).decode()
        for name in document["components"]["schemas"]:
            assert f"#/components/schemas/{name}" in refs or name == "Summary"

    run(settings, body)


def test_healthz_needs_no_token_and_tells_nothing(settings: Settings) -> None:
    async def body(http: Client) -> None:
        assert await get(http, "/healthz", 200, headers={}) == {"status": "ok"}
        assert await get(http, "/healthz", 200, headers={"Authorization": "Bearer wrong"}) == {"status": "ok"}

    run(settings, body)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_redis_down_is_503_without_details(settings: Settings) -> None:
    async def go() -> None:
        nowhere = f"redis://127.0.0.1:{free_port()}/0"
        if is_cluster_url(settings.redis_url):
            nowhere = f"redis+cluster://127.0.0.1:{free_port()}"
        down = connect(settings.model_copy(update={"redis_url": nowhere}))
        started = time.monotonic()
        async with api(settings, down) as http:
            assert await get(http, "/healthz", 503, headers={}) == {"status": "unavailable"}
            for path in (f"/v1/customers/{CUSTOMER}", f"/v1/coupons/{VALID}"):
                assert await get(http, path, 503) == {"error": "redis unavailable"}
            found = await lookup(http, 503, "email", "a@example.com")
            assert found == {"error": "redis unavailable"}
        assert time.monotonic() - started < 10  # the API's own client fails fast: no long back-off per request

    asyncio.run(go())


def test_a_corrupt_value_is_500_without_a_traceback(settings: Settings) -> None:
    async def body(http: Client) -> None:
        client = connect_redis(settings.redis_url)
        try:
            await client.set(Keys(settings.redis_prefix).customer("c-corrupt"), b"{not json")
            await client.set(Keys(settings.redis_prefix).coupon("BAD0-0000-0000-0001"), b"[1, 2]")
        finally:
            await client.aclose()
        for path in ("/v1/customers/c-corrupt", "/v1/coupons/BAD0-0000-0000-0001"):
            response = await http.get(path, headers=AUTH)
            text = await response.text()
            assert response.status == 500 and orjson.loads(text) == {"error": "internal error"}
            assert "Traceback" not in text and "orjson" not in text

    run(settings, body)


def test_unknown_paths_and_methods_answer_json(settings: Settings) -> None:
    async def body(http: Client) -> None:
        assert await get(http, "/v1/nothing", 404) == {"error": "not found"}
        response = await http.post(f"/v1/customers/{CUSTOMER}", headers=AUTH)
        assert response.status == 405 and orjson.loads(await response.read()) == {"error": "method not allowed"}
        assert "GET" in response.headers["Allow"]

    run(settings, body)


def test_answers_are_not_cached(settings: Settings) -> None:
    async def body(http: Client) -> None:
        response = await http.get(f"/v1/customers/{CUSTOMER}", headers=AUTH)
        assert response.status == 200 and response.headers["Cache-Control"] == "no-store"
        await response.release()

    run(settings, body)


def test_wrong_tokens_are_throttled_per_address_and_the_right_one_waits_too(settings: Settings) -> None:
    """200 guesses used to take 0.06 s: past 30 failures a minute the address is answered 429 with Retry-After."""

    async def body(http: Client) -> None:
        for _ in range(FAILURES_ALLOWED):
            response = await http.get("/v1/kpis", headers={"Authorization": "Bearer guess"})
            assert response.status == 401
            await response.release()
        refused = await http.get("/v1/kpis", headers=AUTH)  # even the right token, from this address, waits
        assert refused.status == 429 and 0 < int(refused.headers["Retry-After"]) <= 60
        assert (await refused.json()) == {"error": "too many failed attempts: wait"}
        login = await http.post("/login", data={"token": TOKEN}, allow_redirects=False)
        assert login.status == 429
        await login.release()
        health = await http.get("/healthz")  # public routes stay open
        assert health.status == 200
        await health.release()

    run(settings, body)


def test_every_answer_carries_the_security_headers(settings: Settings) -> None:
    async def body(http: Client) -> None:
        for path, headers in (("/healthz", {}), ("/login", {}), ("/v1/kpis", AUTH), ("/v1/kpis", {}),
                              ("/dashboard", {}), ("/nowhere", AUTH)):  # fmt: skip
            response = await http.get(path, headers=headers, allow_redirects=False)
            for name, value in SECURITY_HEADERS.items():
                assert response.headers.get(name) == value, (path, name)
            assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
            await response.release()

    run(settings, body)


def test_the_dashboard_cookie_is_secure_behind_tls_expires_and_logout_deletes_it(settings: Settings) -> None:
    async def body(http: Client) -> None:
        plain = await http.post("/login", data={"token": TOKEN}, allow_redirects=False)
        cookie = plain.headers["Set-Cookie"]
        assert plain.status == 303 and "HttpOnly" in cookie and f"Max-Age={SESSION_SECONDS}" in cookie
        assert "Secure" not in cookie  # plain HTTP on loopback: a Secure cookie would never come back
        proxied = await http.post("/login", data={"token": TOKEN}, headers={"X-Forwarded-Proto": "https"},
                                  allow_redirects=False)  # fmt: skip
        assert "Secure" in proxied.headers["Set-Cookie"] and "SameSite=Strict" in proxied.headers["Set-Cookie"]
        out = await http.post("/logout", allow_redirects=False)
        assert out.status == 303 and out.headers["Location"] == "/login"
        assert 'orch_token=""' in out.headers["Set-Cookie"] and "Max-Age=0" in out.headers["Set-Cookie"]
        for response in (plain, proxied, out):
            await response.release()

    run(settings, body)


def test_a_broken_form_is_400_and_a_slow_body_is_cut_off(settings: Settings) -> None:
    async def body(http: Client) -> None:
        broken = await http.post("/login", data=b"--x\r\nContent-Disposition: form-data\r\n\r\nno end",
                                 headers={"Content-Type": "multipart/form-data; boundary=x"})  # fmt: skip
        assert broken.status == 400 and (await broken.json())["error"].startswith("malformed form")
        host, port = http.server.host, http.server.port
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                     b"Content-Length: 100\r\n\r\ntoken=abc")  # 9 bytes of 100, then nothing  # fmt: skip
        await writer.drain()
        started = time.monotonic()
        answer = await asyncio.wait_for(reader.read(4096), BODY_SECONDS + 10)
        assert answer.startswith(b"HTTP/1.1 408") and time.monotonic() - started < BODY_SECONDS + 5
        writer.close()

    run(settings, body)
