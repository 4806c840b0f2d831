"""What the API's handlers share (serving/api.py, serving/pages.py): the application's keys, JSON answers, the
token comparison and the throttle of failed attempts (serving/guard.py)."""

from __future__ import annotations

import hmac
import math
import time
from collections.abc import Mapping
from typing import Final

import orjson
from aiohttp import web
from pydantic import BaseModel

from orchestrator.serving.connect import RedisClient
from orchestrator.serving.guard import Throttle, client_address
from orchestrator.serving.keys import Keys
from orchestrator.serving.schemas import Error, body

COOKIE = "orch_token"  # the dashboard's session: the token, HttpOnly, SameSite=Strict, path /dashboard
TOKEN: Final = web.AppKey("token", bytes)
REDIS: Final = web.AppKey[RedisClient]("redis")
KEYS: Final = web.AppKey("keys", Keys)
SECRET: Final = web.AppKey("identity_secret", bytes)
OPENAPI: Final = web.AppKey("openapi", bytes)
THROTTLE: Final = web.AppKey("throttle", Throttle)


def json_answer(answer: BaseModel, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    response = web.Response(body=orjson.dumps(body(answer)), status=status, content_type="application/json")
    response.headers["Cache-Control"] = "no-store"  # answers carry customer data: no shared caches
    if headers:
        response.headers.update(headers)
    return response


def error_answer(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return json_answer(Error(error=message), status, headers)


def matches(presented: str, token: bytes) -> bool:
    return hmac.compare_digest(presented.encode("utf-8", "surrogateescape"), token)


def throttled(request: web.Request) -> web.Response | None:
    """429 with `Retry-After` while the client's address has failed too often, else None."""
    wait = request.app[THROTTLE].retry_after(client_address(request), time.monotonic())
    if wait is None:
        return None
    return error_answer(429, "too many failed attempts: wait", {"Retry-After": str(math.ceil(wait))})


def failed(request: web.Request) -> None:
    request.app[THROTTLE].failed(client_address(request), time.monotonic())
