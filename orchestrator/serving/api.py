"""The HTTP API for stores and senders (`orchestrator api`): read-only views of what the worker wrote to Redis.

Every endpoint but `/healthz` and `/login` needs `Authorization: Bearer <ORCH_API_TOKEN>`. Bodies are JSON
(orjson), built through the models of `orchestrator.serving.schemas`; errors are `{"error": "..."}` and never carry
a traceback. `ROUTES` declares each endpoint once: `create_app` registers it and `/openapi.json` documents it
(`orchestrator.serving.openapi`). See docs/api.md for the endpoints.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from orchestrator.measurement.kpis import SEP, summarize
from orchestrator.measurement.occurrences import segment_sizes
from orchestrator.serving.answers import loads, offer, safe_summary
from orchestrator.serving.complementary import TOP_SCHEMA, complementary, top_of
from orchestrator.serving.connect import RedisClient, connect_redis, get_many, unavailable
from orchestrator.serving.guard import Throttle, secured
from orchestrator.serving.http import (
    COOKIE,
    KEYS,
    OPENAPI,
    REDIS,
    SECRET,
    THROTTLE,
    TOKEN,
    error_answer,
    failed,
    json_answer,
    matches,
    throttled,
)
from orchestrator.serving.keys import Keys
from orchestrator.serving.openapi import Answer, Handler, Param, Route, document, package_version, public_paths
from orchestrator.serving.pages import dashboard, login, login_form, logout
from orchestrator.serving.redis import (
    find_customer,
    read_kpis,
    read_partition_kpis,
    read_segment_names,
    read_step_order,
    read_trail,
)
from orchestrator.serving.schemas import (
    COUPON_CODE_PATTERN,
    Complementary,
    Coupon,
    Customer,
    Error,
    Health,
    Kpis,
    LoginForm,
    Segments,
    Summary,
    Timeline,
    UnknownCoupon,
    UnknownOffer,
)
from orchestrator.settings import MIN_API_TOKEN, Settings

log = logging.getLogger(__name__)

KIND = re.compile(r"[a-z0-9_]+")
COUPON_CODE = re.compile(COUPON_CODE_PATTERN)
MAX_KIND = 64
MAX_VALUE = 256
REDIS_TIMEOUT = 2.0  # seconds: a store waits at most about this long for a 503 when Redis is down
MAX_OFFERS = 100  # coupons resolved per customer answer; a summary lists only the active few
_REALM = 'Bearer realm="orchestrator"'


# ------------------------------------------------------------------ responses


class _BadRequest(Exception):
    """A validation failure: answered 400 with its message."""


# ------------------------------------------------------------------ middlewares


def _authorised(request: web.Request) -> str | None:
    """None when the bearer token matches; else why not (`missing` or `invalid`). A browser on the dashboard has
    no header to send: there the token may come from the cookie `/login` sets."""
    header = request.headers.get("Authorization", "")
    scheme, _, credentials = header.strip().partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        presented = credentials.strip()
    elif request.path == "/dashboard" and request.cookies.get(COOKIE):
        presented = request.cookies[COOKIE]
    else:
        return "missing"
    return None if matches(presented, request.app[TOKEN]) else "invalid"


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Token first (before routing, so unknown paths say nothing either), then errors as JSON, never tracebacks."""
    if request.path not in _PUBLIC:
        refused = throttled(request)
        if refused is not None:
            return refused
        failure = _authorised(request)
        if failure == "invalid":
            failed(request)
        if failure == "missing" and request.path == "/dashboard":
            raise web.HTTPSeeOther("/login")
        if failure == "missing":
            return error_answer(401, "missing bearer token", {"WWW-Authenticate": _REALM})
        if failure == "invalid":
            return error_answer(401, "invalid bearer token", {"WWW-Authenticate": f'{_REALM}, error="invalid_token"'})
    try:
        return await handler(request)
    except _BadRequest as error:
        return error_answer(400, str(error))
    except web.HTTPRedirection:
        raise
    except web.HTTPException as error:  # routing: 404 unknown path, 405 method not allowed
        headers = {"Allow": error.headers["Allow"]} if "Allow" in error.headers else None
        return error_answer(error.status, error.reason.lower(), headers)
    except Exception as error:
        if unavailable(error):
            log.warning("redis unavailable for %s %s", request.method, request.path, exc_info=True)
            return error_answer(503, "redis unavailable")
        log.exception("internal error for %s %s", request.method, request.path)
        return error_answer(500, "internal error")


# ------------------------------------------------------------------ reading Redis


async def _customer_answer(request: web.Request, customer: str) -> web.Response:
    redis_client = request.app[REDIS]
    keys = request.app[KEYS]
    summary = loads(await redis_client.get(keys.customer(customer)))
    if summary is None:
        return error_answer(404, "unknown customer")
    raw_codes = summary.get("offers")
    codes = [c for c in raw_codes if isinstance(c, str)][:MAX_OFFERS] if isinstance(raw_codes, list) else []
    offers: list[Coupon | UnknownOffer] = []
    if codes:
        stored = await get_many(redis_client, [keys.coupon(code) for code in codes])
        now = datetime.now(UTC)
        offers = [offer(code, loads(value), now) for code, value in zip(codes, stored, strict=True)]
    answer = Customer(customer=customer, summary=Summary.model_validate(safe_summary(summary)), offers=offers)
    return json_answer(answer)


def _check_value(value: str | None, name: str) -> str:
    if value is None:
        raise _BadRequest(f"{name} is required")
    if not value.strip():
        raise _BadRequest(f"{name} must not be empty")
    if len(value) > MAX_VALUE:
        raise _BadRequest(f"{name} must be at most {MAX_VALUE} characters")
    return value


# ------------------------------------------------------------------ handlers


async def lookup(request: web.Request) -> web.Response:
    kind = request.query.get("kind")
    if kind is None:
        raise _BadRequest("kind is required")
    if len(kind) > MAX_KIND or not KIND.fullmatch(kind):
        raise _BadRequest(f"kind must match [a-z0-9_]+ (at most {MAX_KIND} characters), e.g. email")
    value = _check_value(request.query.get("value"), "value")
    found = await find_customer(request.app[REDIS], request.app[KEYS], kind, value, request.app[SECRET])
    if found is None:
        return error_answer(404, "unknown customer")
    return await _customer_answer(request, found)


async def customer(request: web.Request) -> web.Response:
    return await _customer_answer(request, _check_value(request.match_info["customer"], "customer"))


async def coupon(request: web.Request) -> web.Response:
    code = request.match_info["code"]
    if not COUPON_CODE.fullmatch(code):
        raise _BadRequest("code must look like K7QM-3XDP-9W2A-HF4T: four groups of four of 0-9 and A-Z")
    stored = loads(await request.app[REDIS].get(request.app[KEYS].coupon(code)))
    if stored is None:
        return json_answer(UnknownCoupon(code=code, state="unknown", error="unknown coupon"), 404)
    return json_answer(offer(code, stored, datetime.now(UTC)))


async def timeline(request: web.Request) -> web.Response:
    customer_key = _check_value(request.match_info["customer"], "customer")
    records = await read_trail(request.app[REDIS], request.app[KEYS], customer_key)
    if not records:
        return error_answer(404, "no audit records for this customer")
    return json_answer(Timeline.model_validate({"customer": customer_key, "records": records}))


async def products(request: web.Request) -> web.Response:
    sku = _check_value(request.match_info["sku"], "sku")
    try:
        top = top_of(request.query.get("top"))
    except ValueError as error:
        raise _BadRequest(str(error)) from None
    found = await complementary(request.app[REDIS], request.app[KEYS], sku, top)
    return error_answer(404, "no complementary-products model yet") if found is None else json_answer(found)


async def _summary(request: web.Request) -> dict[str, Any]:
    redis, keys = request.app[REDIS], request.app[KEYS]
    return summarize(await read_kpis(redis, keys), await read_step_order(redis, keys))


async def kpis(request: web.Request) -> web.Response:
    return json_answer(Kpis.model_validate(await _summary(request)))


async def segments(request: web.Request) -> web.Response:
    redis, keys = request.app[REDIS], request.app[KEYS]
    by_partition, names = await read_partition_kpis(redis, keys), await read_segment_names(redis, keys)
    sizes = {str(p): segment_sizes(counts, SEP, names) for p, counts in by_partition.items()}
    total = segment_sizes(sum(by_partition.values(), Counter()), SEP, names)
    return json_answer(Segments(segments=total, partitions=sizes))


async def openapi(request: web.Request) -> web.Response:
    response = web.Response(body=request.app[OPENAPI], content_type="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


async def healthz(request: web.Request) -> web.Response:
    try:
        await request.app[REDIS].ping()
    except Exception:
        log.warning("health check: redis ping failed", exc_info=True)
        return json_answer(Health(status="unavailable"), 503)
    return json_answer(Health(status="ok"))


# ------------------------------------------------------------------ the routes

_FAILURES = {
    500: Answer("Internal error (details only in the server log)", Error),
    503: Answer("Redis unavailable", Error),
}
_HTML = {"type": "string"}
_TEXT = {"type": "string", "minLength": 1, "maxLength": MAX_VALUE, "pattern": r"\S"}  # what _check_value accepts
_CUSTOMER_KEY = Param("customer", "path", _TEXT, "customer key, e.g. `c-1001` or `anon:<anonymous_id>`")
_FOUND = "The customer, its summary and its offers"

ROUTES: tuple[Route, ...] = (
    Route("GET", "/v1/customers/lookup", lookup, "lookupCustomer", "Find a customer by any identifier",
          description="`customer_id` is the customer key; `anonymous_id` is looked up in clear; every other kind "
          "(email, phone, loyalty_card, device_id, ...) is normalised and hashed as the worker does. URL-encode the "
          "value: a phone's `+` is `%2B`.",
          params=(Param("kind", "query", {"type": "string", "pattern": f"^{KIND.pattern}$", "maxLength": MAX_KIND},
                        examples={"email": {"value": "email"}, "phone": {"value": "phone"}}),
                  Param("value", "query", _TEXT)),
          responses={200: Answer(_FOUND, Customer), 400: Answer("Bad or missing `kind` or `value`", Error),
                     404: Answer("No customer with that identifier (`unknown customer`)", Error), **_FAILURES}),
    Route("GET", "/v1/customers/{customer}", customer, "getCustomer",
          "A customer's summary and offers, by customer key", params=(_CUSTOMER_KEY,),
          responses={200: Answer(_FOUND, Customer), 400: Answer("Bad customer key", Error),
                     404: Answer("No summary for that key (`unknown customer`)", Error), **_FAILURES}),
    Route("GET", "/v1/customers/{customer}/timeline", timeline, "getTimeline",
          "A customer's audit trail: events and every decision with its reason (newest 1,000)",
          params=(_CUSTOMER_KEY,),
          responses={200: Answer("The records, oldest first", Timeline), 400: Answer("Bad customer key", Error),
                     404: Answer("No audit records for this customer", Error), **_FAILURES}),
    Route("GET", "/v1/coupons/{code}", coupon, "getCoupon", "A coupon and whether it can be honoured now",
          params=(Param("code", "path", {"type": "string", "pattern": COUPON_CODE_PATTERN}),),
          responses={200: Answer("The coupon: `valid`, `expired` or `redeemed`", Coupon),
                     400: Answer("Not a coupon code", Error),
                     404: Answer("Unknown coupon (never issued, or expired over 30 days ago)", UnknownCoupon),
                     **_FAILURES}),
    Route("GET", "/v1/products/{sku}/complementary", products, "getComplementary",
          "Products to offer with an item: those bought with it, then best sellers",
          description="From the model the worker learned of the baskets (the `recommend` of journeys); an item it does "
          "not know gets best sellers only. `top`: at most this many (default 10).",
          params=(Param("sku", "path", _TEXT, "the item's sku"), Param("top", "query", TOP_SCHEMA, required=False)),
          responses={200: Answer("The item and the products, best first", Complementary),
                     400: Answer("Bad `top` or sku", Error),
                     404: Answer("No model written yet (`no complementary-products model yet`)", Error), **_FAILURES}),
    Route("GET", "/v1/kpis", kpis, "getKpis",
          "Journey funnels, lift over holdout, cross-channel conversion, CLV, engagement, coupons",
          description="The JSON `orchestrator report --json` prints; definitions in docs/kpis.md.",
          responses={200: Answer("The KPIs", Kpis), **_FAILURES}),
    Route("GET", "/v1/segments", segments, "getSegments", "Each segment's current size, in total and per partition",
          description="Kept by the worker as it keeps the KPIs: a customer joins or leaves a segment at their own "
          "steps (a time-relative condition such as profile.recent is counted as of the customer's last step).",
          responses={200: Answer("The sizes", Segments), **_FAILURES}),
    Route("GET", "/dashboard", dashboard, "dashboard",
          "The KPI dashboard (HTML); a browser signs in at /login (token kept in a cookie)",
          responses={200: Answer("The page", media_type="text/html", schema=_HTML),
                     303: Answer("No token: to /login", headers={"Location": "`/login`"}), **_FAILURES}),
    Route("GET", "/login", login_form, "loginForm", "The dashboard's sign-in form (HTML); no token, no data",
          auth=False, responses={200: Answer("The form", media_type="text/html", schema=_HTML)}),
    Route("POST", "/login", login, "login", "Sign in to the dashboard with the API token", auth=False,
          form=LoginForm,
          responses={303: Answer(f"The token is valid: to /dashboard, with the token as the HttpOnly, SameSite=Strict "
                                 f"cookie `{COOKIE}` of path /dashboard",
                                 headers={"Location": "`/dashboard`", "Set-Cookie": f"`{COOKIE}=...`"}),
                     401: Answer("Not the token: the form again, saying so", media_type="text/html", schema=_HTML)}),
    Route("POST", "/logout", logout, "logout", "Sign out of the dashboard: its cookie is deleted", auth=False,
          responses={303: Answer("To /login, the cookie deleted", headers={"Location": "`/login`"})}),
    Route("GET", "/openapi.json", openapi, "getOpenApi", "This document",
          responses={200: Answer("OpenAPI 3.1", media_type="application/json", schema={"type": "object"})}),
    Route("GET", "/healthz", healthz, "health", "Liveness and Redis reachability; no token, no customer data",
          auth=False,
          responses={200: Answer("Up, Redis answers", Health), 503: Answer("Redis does not answer", Health)}),
)  # fmt: skip


_PUBLIC = public_paths(ROUTES)


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 description served at `/openapi.json`, generated from `ROUTES` and their models."""
    about = "Read-only views of the journey orchestrator's Redis serving layer, for stores and senders."
    return document(ROUTES, "Orchestrator API", package_version(), about)


# ------------------------------------------------------------------ the application


def _token(settings: Settings) -> bytes:
    if settings.api_token is None or not settings.api_token.get_secret_value().strip():
        raise ValueError("the API needs a token: set ORCH_API_TOKEN (clients send `Authorization: Bearer <token>`)")
    token = settings.api_token.get_secret_value().strip()
    if len(token) < MIN_API_TOKEN:
        raise ValueError(f"ORCH_API_TOKEN has {len(token)} characters: use at least {MIN_API_TOKEN}, a random one "
                         f"(`openssl rand -hex 32`), so that it cannot be guessed")  # fmt: skip
    return token.encode("utf-8", "surrogateescape")


def create_app(settings: Settings, redis: RedisClient) -> web.Application:
    """The API on `redis` (not closed here: the caller owns it). Raises ValueError without `settings.api_token`."""
    app = web.Application(middlewares=[_guard])
    app.on_response_prepare.append(_headers)
    app[TOKEN] = _token(settings)
    app[THROTTLE] = Throttle()
    app[REDIS] = redis
    app[KEYS] = Keys(settings.redis_prefix)
    app[SECRET] = settings.identity_secret.get_secret_value().encode()
    app[OPENAPI] = orjson.dumps(openapi_document())
    for route in ROUTES:  # in order: lookup before {customer}, which would match `lookup`
        if route.method == "GET":
            app.router.add_get(route.path, route.handler)  # and HEAD
        else:
            app.router.add_route(route.method, route.path, route.handler)
    return app


async def _headers(_: web.Request, response: web.StreamResponse) -> None:
    secured(response)  # every answer: redirects, errors and pages alike


def connect(settings: Settings) -> RedisClient:
    """The API's Redis client (a single Redis or a cluster): short timeouts and one quick retry (a dropped pooled
    connection), so that callers get a 503 in about `REDIS_TIMEOUT` seconds rather than wait on back-off while Redis
    is down."""
    return connect_redis(
        settings.redis_url,
        socket_connect_timeout=REDIS_TIMEOUT,
        socket_timeout=REDIS_TIMEOUT,
        retry=Retry(ExponentialBackoff(cap=0.1, base=0.01), retries=1),
        health_check_interval=30,
    )


def run_api(settings: Settings) -> None:
    """Serve on `settings.api_host:api_port` until interrupted. Raises ValueError without `settings.api_token`."""
    _token(settings)

    async def build() -> web.Application:
        client = connect(settings)
        app = create_app(settings, client)

        async def close(_: web.Application) -> None:
            await client.aclose()

        app.on_cleanup.append(close)
        return app

    web.run_app(build(), host=settings.api_host, port=settings.api_port, access_log=log)
