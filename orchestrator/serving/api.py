"""The HTTP API for stores and senders (`orchestrator api`): read-only views of what the worker wrote to Redis.

Every endpoint but `/healthz` needs `Authorization: Bearer <ORCH_API_TOKEN>`. Bodies are JSON (orjson); errors
are `{"error": "..."}` and never carry a traceback. See docs/api.md for the endpoints and `/openapi.json`
for the machine-readable description.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Final

import orjson
from aiohttp import web
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from orchestrator.dashboard import render as render_dashboard
from orchestrator.kpis import summarize
from orchestrator.serving.connect import RedisClient, connect_redis, get_many, unavailable
from orchestrator.serving.keys import SAFE_TRAITS, Keys
from orchestrator.serving.redis import find_customer, read_kpis, read_step_order, read_trail
from orchestrator.settings import Settings
from orchestrator.timefmt import parse_rfc3339

log = logging.getLogger(__name__)

KIND = re.compile(r"[a-z0-9_]+")
COUPON_CODE = re.compile(r"[0-9A-Z]{4}(?:-[0-9A-Z]{4}){3}")
MAX_KIND = 64
MAX_VALUE = 256
REDIS_TIMEOUT = 2.0  # seconds: a store waits at most about this long for a 503 when Redis is down
MAX_OFFERS = 100  # coupons resolved per customer answer; a summary lists only the active few
COOKIE = "orch_token"  # the dashboard's session: the token, HttpOnly, SameSite=Strict, path /dashboard

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_TOKEN: Final = web.AppKey("token", bytes)
_REDIS: Final = web.AppKey[RedisClient]("redis")
_KEYS: Final = web.AppKey("keys", Keys)
_SECRET: Final = web.AppKey("identity_secret", bytes)
_OPENAPI: Final = web.AppKey("openapi", bytes)
_PUBLIC = frozenset({"/healthz", "/login"})  # served without a token: they say nothing about customers
_REALM = 'Bearer realm="orchestrator"'


# ------------------------------------------------------------------ responses


def _json(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    response = web.Response(body=orjson.dumps(body), status=status, content_type="application/json")
    response.headers["Cache-Control"] = "no-store"  # answers carry customer data: no shared caches
    if headers:
        response.headers.update(headers)
    return response


def _error(status: int, message: str, headers: Mapping[str, str] | None = None, **extra: Any) -> web.Response:
    return _json({"error": message, **extra}, status, headers)


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
    return None if _matches(presented, request.app[_TOKEN]) else "invalid"


def _matches(presented: str, token: bytes) -> bool:
    return hmac.compare_digest(presented.encode("utf-8", "surrogateescape"), token)


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Token first (before routing, so unknown paths say nothing either), then errors as JSON, never tracebacks."""
    if request.path not in _PUBLIC:
        failure = _authorised(request)
        if failure == "missing" and request.path == "/dashboard":
            raise web.HTTPSeeOther("/login")
        if failure == "missing":
            return _error(401, "missing bearer token", {"WWW-Authenticate": _REALM})
        if failure == "invalid":
            return _error(401, "invalid bearer token", {"WWW-Authenticate": f'{_REALM}, error="invalid_token"'})
    try:
        return await handler(request)
    except _BadRequest as error:
        return _error(400, str(error))
    except web.HTTPRedirection:
        raise
    except web.HTTPException as error:  # routing: 404 unknown path, 405 method not allowed
        headers = {"Allow": error.headers["Allow"]} if "Allow" in error.headers else None
        return _error(error.status, error.reason.lower(), headers)
    except Exception as error:
        if unavailable(error):
            log.warning("redis unavailable for %s %s", request.method, request.path, exc_info=True)
            return _error(503, "redis unavailable")
        log.exception("internal error for %s %s", request.method, request.path)
        return _error(500, "internal error")


# ------------------------------------------------------------------ reading Redis


def _loads(value: bytes | str | None) -> dict[str, Any] | None:
    if value is None:
        return None
    loaded = orjson.loads(value)
    if not isinstance(loaded, dict):
        raise ValueError("a stored value is not a JSON object")
    return loaded


def coupon_state(coupon: Mapping[str, Any], now: datetime) -> str:
    """`redeemed`, else `expired` from `expires_at` on (or when it cannot be read: never honour an undated coupon),
    else `valid`."""
    if coupon.get("status") == "redeemed":
        return "redeemed"
    expires_at = coupon.get("expires_at")
    try:
        expiry = parse_rfc3339(expires_at) if isinstance(expires_at, str) else None
    except ValueError:
        expiry = None
    if expiry is None or now >= expiry:
        return "expired"
    return "valid"


def _coupon_view(code: str, coupon: Mapping[str, Any] | None, now: datetime) -> dict[str, Any]:
    if coupon is None:
        return {"code": code, "state": "unknown"}
    return {"code": code, "state": coupon_state(coupon, now), **{k: v for k, v in coupon.items() if k != "code"}}


def _safe_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """Defence in depth: the worker stores only safe traits, and the API serves only those, whatever is stored."""
    traits = summary.get("traits")
    if isinstance(traits, dict):
        summary = {**summary, "traits": {k: v for k, v in traits.items() if k in SAFE_TRAITS}}
    return summary


async def _customer_answer(request: web.Request, customer: str) -> web.Response:
    redis_client = request.app[_REDIS]
    keys = request.app[_KEYS]
    summary = _loads(await redis_client.get(keys.customer(customer)))
    if summary is None:
        return _error(404, "unknown customer")
    raw_codes = summary.get("offers")
    codes = [c for c in raw_codes if isinstance(c, str)][:MAX_OFFERS] if isinstance(raw_codes, list) else []
    offers: list[dict[str, Any]] = []
    if codes:
        stored = await get_many(redis_client, [keys.coupon(code) for code in codes])
        now = datetime.now(UTC)
        offers = [_coupon_view(code, _loads(value), now) for code, value in zip(codes, stored, strict=True)]
    return _json({"customer": customer, "summary": _safe_summary(summary), "offers": offers})


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
    found = await find_customer(request.app[_REDIS], request.app[_KEYS], kind, value, request.app[_SECRET])
    if found is None:
        return _error(404, "unknown customer")
    return await _customer_answer(request, found)


async def customer(request: web.Request) -> web.Response:
    return await _customer_answer(request, _check_value(request.match_info["customer"], "customer"))


async def coupon(request: web.Request) -> web.Response:
    code = request.match_info["code"]
    if not COUPON_CODE.fullmatch(code):
        raise _BadRequest("code must look like K7QM-3XDP-9W2A-HF4T: four groups of four of 0-9 and A-Z")
    view = _coupon_view(code, _loads(await request.app[_REDIS].get(request.app[_KEYS].coupon(code))), datetime.now(UTC))
    if view["state"] == "unknown":
        return _json({**view, "error": "unknown coupon"}, 404)
    return _json(view)


async def timeline(request: web.Request) -> web.Response:
    customer_key = _check_value(request.match_info["customer"], "customer")
    records = await read_trail(request.app[_REDIS], request.app[_KEYS], customer_key)
    if not records:
        return _error(404, "no audit records for this customer")
    return _json({"customer": customer_key, "records": records})


async def _summary(request: web.Request) -> dict[str, Any]:
    redis, keys = request.app[_REDIS], request.app[_KEYS]
    return summarize(await read_kpis(redis, keys), await read_step_order(redis, keys))


async def kpis(request: web.Request) -> web.Response:
    return _json(await _summary(request))


async def dashboard(request: web.Request) -> web.Response:
    generated = f"live from Redis, {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC"
    page = render_dashboard(await _summary(request), generated=generated)
    response = web.Response(text=page, content_type="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


LOGIN_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign in: KPI dashboard</title>
<style>body{{font:15px system-ui,sans-serif;margin:48px}}input{{font:inherit;padding:6px;width:320px}}</style>
</head><body><h1>KPI dashboard</h1><p>{message}</p><form method="post" action="/login">
<label>API token <input type="password" name="token" autocomplete="current-password" autofocus></label>
<button type="submit">Open the dashboard</button></form></body></html>"""


async def login_form(request: web.Request) -> web.Response:
    return web.Response(text=LOGIN_PAGE.format(message="Enter the API token (ORCH_API_TOKEN)."),
                        content_type="text/html")  # fmt: skip


async def login(request: web.Request) -> web.Response:
    """The token from the form becomes an HttpOnly cookie for /dashboard: a browser never puts it in a URL."""
    form = await request.post()
    presented = form.get("token")
    if not isinstance(presented, str) or not _matches(presented.strip(), request.app[_TOKEN]):
        return web.Response(text=LOGIN_PAGE.format(message="That token is not valid."), status=401,
                            content_type="text/html")  # fmt: skip
    response = web.HTTPSeeOther("/dashboard")
    response.set_cookie(COOKIE, presented.strip(), path="/dashboard", httponly=True, samesite="Strict",
                        secure=request.secure)  # fmt: skip
    raise response


async def openapi(request: web.Request) -> web.Response:
    response = web.Response(body=request.app[_OPENAPI], content_type="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


async def healthz(request: web.Request) -> web.Response:
    try:
        await request.app[_REDIS].ping()
    except Exception:
        log.warning("health check: redis ping failed", exc_info=True)
        return _json({"status": "unavailable"}, 503)
    return _json({"status": "ok"})


# ------------------------------------------------------------------ the application


def _token(settings: Settings) -> bytes:
    if settings.api_token is None or not settings.api_token.get_secret_value().strip():
        raise ValueError("the API needs a token: set ORCH_API_TOKEN (clients send `Authorization: Bearer <token>`)")
    return settings.api_token.get_secret_value().strip().encode("utf-8", "surrogateescape")


def create_app(settings: Settings, redis: RedisClient) -> web.Application:
    """The API on `redis` (not closed here: the caller owns it). Raises ValueError without `settings.api_token`."""
    app = web.Application(middlewares=[_guard])
    app[_TOKEN] = _token(settings)
    app[_REDIS] = redis
    app[_KEYS] = Keys(settings.redis_prefix)
    app[_SECRET] = settings.identity_secret.get_secret_value().encode()
    app[_OPENAPI] = orjson.dumps(openapi_document())
    app.router.add_get("/v1/customers/lookup", lookup)  # before {customer}, which would match `lookup`
    app.router.add_get("/v1/customers/{customer}", customer)
    app.router.add_get("/v1/customers/{customer}/timeline", timeline)
    app.router.add_get("/v1/coupons/{code}", coupon)
    app.router.add_get("/v1/kpis", kpis)
    app.router.add_get("/dashboard", dashboard)
    app.router.add_get("/login", login_form)
    app.router.add_post("/login", login)
    app.router.add_get("/openapi.json", openapi)
    app.router.add_get("/healthz", healthz)
    return app


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


# ------------------------------------------------------------------ OpenAPI


def _api_version() -> str:
    try:
        return version("orchestrator")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without metadata
        return "0.0.0"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _answer(description: str, schema: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


_UNAUTHORISED = {
    "description": "Missing or wrong bearer token (with `WWW-Authenticate: Bearer`); the body carries no data.",
    "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
    "content": {"application/json": {"schema": _ref("Error")}},
}
_COMMON = {
    "401": _UNAUTHORISED,
    "500": _answer("Internal error (details only in the server log)", "Error"),
    "503": _answer("Redis unavailable", "Error"),
}


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 description served at `/openapi.json`."""
    coupon_fields = {
        "code": {"type": "string", "pattern": COUPON_CODE.pattern, "examples": ["K7QM-3XDP-9W2A-HF4T"]},
        "state": {"type": "string", "enum": ["valid", "expired", "redeemed", "unknown"]},
        "customer": {"type": "string", "description": "customer key the coupon was issued to"},
        "journey": {"type": "string"},
        "action_id": {"type": "string"},
        "discount_percent": {"type": "number"},
        "issued_at": {"type": "string", "format": "date-time"},
        "expires_at": {"type": "string", "format": "date-time"},
        "status": {"type": "string", "enum": ["issued", "redeemed"], "description": "as stored by the worker"},
        "redeemed_at": {"type": "string", "format": "date-time"},
        "store_id": {"type": "string"},
        "order_id": {"type": "string"},
    }
    schemas: dict[str, Any] = {
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
        "Health": {
            "type": "object",
            "required": ["status"],
            "properties": {"status": {"type": "string", "enum": ["ok", "unavailable"]}},
        },
        "Coupon": {
            "type": "object",
            "description": "A coupon and its state now: `expired` from `expires_at` on unless redeemed.",
            "required": ["code", "state"],
            "properties": coupon_fields,
            "additionalProperties": True,
        },
        "UnknownCoupon": {
            "type": "object",
            "required": ["code", "state", "error"],
            "properties": {
                "code": coupon_fields["code"],
                "state": {"const": "unknown"},
                "error": {"type": "string"},
            },
        },
        "Summary": {
            "type": "object",
            "description": "The worker's summary of a customer (safe traits only; never e-mail, phone or address).",
            "properties": {
                "customer_id": {"type": ["string", "null"]},
                "traits": {
                    "type": "object",
                    "properties": {name: {"type": ["string", "null"]} for name in SAFE_TRAITS},
                    "additionalProperties": False,
                },
                "lifetime_value": {"type": "number"},
                "orders": {"type": "integer"},
                "last_store_id": {"type": ["string", "null"]},
                "last_channel": {"type": ["string", "null"]},
                "last_seen_at": {"type": ["string", "null"], "format": "date-time"},
                "cart": {},
                "cart_value": {"type": ["number", "null"]},
                "consent": {"type": "object"},
                "channels": {},
                "offers": {"type": "array", "items": {"type": "string"}, "description": "active coupon codes"},
                "updated_at": {"type": "string", "format": "date-time"},
            },
            "additionalProperties": True,
        },
        "Timeline": {
            "type": "object",
            "required": ["customer", "records"],
            "properties": {"customer": {"type": "string"},
                           "records": {"type": "array", "items": {"type": "object"}}},
        },
        "Kpis": {
            "type": "object",
            "required": ["journeys", "cross_channel", "clv", "engagement", "coupons", "channels", "days"],
            "additionalProperties": True,
        },
        "Customer": {
            "type": "object",
            "required": ["customer", "summary", "offers"],
            "properties": {
                "customer": {"type": "string", "description": "customer key, e.g. `c-1001` or `anon:<anonymous_id>`"},
                "summary": _ref("Summary"),
                "offers": {
                    "type": "array",
                    "description": "each code of `summary.offers` with its state now; honour only `valid` ones",
                    "items": _ref("Coupon"),
                },
            },
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Orchestrator API",
            "version": _api_version(),
            "description": "Read-only views of the journey orchestrator's Redis serving layer, for stores and senders.",
        },
        "security": [{"bearerAuth": []}],
        "paths": {
            "/v1/customers/lookup": {
                "get": {
                    "operationId": "lookupCustomer",
                    "summary": "Find a customer by any identifier",
                    "description": "`customer_id` is the customer key; `anonymous_id` is looked up in clear; every "
                    "other kind (email, phone, loyalty_card, device_id, ...) is normalised and hashed as the worker "
                    "does. URL-encode the value: a phone's `+` is `%2B`.",
                    "parameters": [
                        {
                            "name": "kind",
                            "in": "query",
                            "required": True,
                            "schema": {"type": "string", "pattern": "^[a-z0-9_]+$", "maxLength": MAX_KIND},
                            "examples": {"email": {"value": "email"}, "phone": {"value": "phone"}},
                        },
                        {
                            "name": "value",
                            "in": "query",
                            "required": True,
                            "schema": {"type": "string", "minLength": 1, "maxLength": MAX_VALUE},
                        },
                    ],
                    "responses": {
                        "200": _answer("The customer, its summary and its offers", "Customer"),
                        "400": _answer("Bad or missing `kind` or `value`", "Error"),
                        "404": _answer("No customer with that identifier (`unknown customer`)", "Error"),
                        **_COMMON,
                    },
                }
            },
            "/v1/customers/{customer}": {
                "get": {
                    "operationId": "getCustomer",
                    "summary": "A customer's summary and offers, by customer key",
                    "parameters": [
                        {
                            "name": "customer",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "minLength": 1, "maxLength": MAX_VALUE},
                        }
                    ],
                    "responses": {
                        "200": _answer("The customer, its summary and its offers", "Customer"),
                        "400": _answer("Bad customer key", "Error"),
                        "404": _answer("No summary for that key (`unknown customer`)", "Error"),
                        **_COMMON,
                    },
                }
            },
            "/v1/customers/{customer}/timeline": {
                "get": {
                    "operationId": "getTimeline",
                    "summary": "A customer's audit trail: events and every decision with its reason (newest 1,000)",
                    "parameters": [{"name": "customer", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "responses": {
                        "200": _answer("The records, oldest first", "Timeline"),
                        "404": _answer("No audit records for this customer", "Error"),
                        **_COMMON,
                    },
                }
            },
            "/v1/kpis": {
                "get": {
                    "operationId": "getKpis",
                    "summary": "Journey funnels, lift over holdout, cross-channel conversion, CLV, engagement, coupons",
                    "description": "The JSON `orchestrator report --json` prints; definitions in docs/kpis.md.",
                    "responses": {"200": _answer("The KPIs", "Kpis"), **_COMMON},
                }
            },
            "/dashboard": {
                "get": {
                    "operationId": "dashboard",
                    "summary": "The KPI dashboard (HTML); a browser signs in at /login (token kept in a cookie)",
                    "responses": {"200": {"description": "The page", "content": {"text/html": {}}},
                                  "303": {"description": "No token: to /login"}, **_COMMON},
                }
            },
"/v1/coupons/{code}": {
                "get": {
                    "operationId": "getCoupon",
                    "summary": "A coupon and whether it can be honoured now",
                    "parameters": [
                        {
                            "name": "code",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "pattern": f"^{COUPON_CODE.pattern}$"},
                        }
                    ],
                    "responses": {
                        "200": _answer("The coupon: `valid`, `expired` or `redeemed`", "Coupon"),
                        "400": _answer("Not a coupon code", "Error"),
                        "404": _answer("Unknown coupon (never issued, or expired over 30 days ago)", "UnknownCoupon"),
                        **_COMMON,
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "getOpenApi",
                    "summary": "This document",
                    "responses": {
                        "200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {}}}},
                        "401": _UNAUTHORISED,
                    },
                }
            },
            "/healthz": {
                "get": {
                    "operationId": "health",
                    "summary": "Liveness and Redis reachability; no token, no customer data",
                    "security": [],
                    "responses": {
                        "200": _answer("Up, Redis answers", "Health"),
                        "503": _answer("Redis does not answer", "Health"),
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "description": "the value of ORCH_API_TOKEN"}
            },
            "schemas": schemas,
        },
    }
