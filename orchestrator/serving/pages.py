"""The API's pages for a person: the dashboard (live KPIs, segments and broadcasts from Redis) and its sign-in.

A browser signs in at `/login` with the API token, kept in an HttpOnly, SameSite=Strict cookie of path /dashboard
(`Secure` behind TLS, for `SESSION_SECONDS`); `/logout` deletes it. Failed sign-ins count against the client's
address like wrong bearer tokens (serving/guard.py).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from aiohttp import web
from pydantic import ValidationError

from orchestrator.measurement.dashboard import login_page
from orchestrator.measurement.dashboard import render as render_dashboard
from orchestrator.measurement.kpis import SEP, summarize
from orchestrator.measurement.occurrences import segment_sizes
from orchestrator.serving.guard import BODY_SECONDS, SESSION_SECONDS, over_tls
from orchestrator.serving.http import COOKIE, KEYS, REDIS, TOKEN, error_answer, failed, matches, throttled
from orchestrator.serving.redis import read_kpis, read_maps, read_segment_names, read_step_order
from orchestrator.serving.schemas import LoginForm


async def dashboard(request: web.Request) -> web.Response:
    generated = f"live from Redis, {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC"
    redis, keys = request.app[REDIS], request.app[KEYS]
    counts = await read_kpis(redis, keys)
    summary = summarize(counts, await read_step_order(redis, keys))
    names = await read_segment_names(redis, keys)
    summary["segments"] = {name: {"now": size} for name, size in segment_sizes(counts, SEP, names).items()}
    page = render_dashboard(summary, generated=generated, maps=await read_maps(redis, keys))
    response = web.Response(text=page, content_type="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


async def login_form(request: web.Request) -> web.Response:
    return web.Response(text=login_page("Enter the API token (ORCH_API_TOKEN)."), content_type="text/html")


async def login(request: web.Request) -> web.Response:
    """The token from the form becomes the dashboard's cookie: a browser never puts it in a URL."""
    refused = throttled(request)
    if refused is not None:
        return refused
    try:
        form = await asyncio.wait_for(request.post(), BODY_SECONDS)
    except TimeoutError:
        return error_answer(408, "the form did not arrive in time")
    except (ValueError, AssertionError, web.HTTPException):  # a broken multipart or urlencoded body
        return error_answer(400, "malformed form: send token=<the API token>")
    try:
        presented = LoginForm.model_validate({"token": form.get("token")}).token
    except ValidationError:  # no token field, or a file
        presented = None
    if presented is None or not matches(presented.strip(), request.app[TOKEN]):
        failed(request)
        return web.Response(text=login_page("That token is not valid."), status=401, content_type="text/html")
    response = web.HTTPSeeOther("/dashboard")
    response.set_cookie(COOKIE, presented.strip(), path="/dashboard", httponly=True, samesite="Strict",
                        secure=over_tls(request), max_age=SESSION_SECONDS)  # fmt: skip
    raise response


async def logout(request: web.Request) -> web.Response:
    """The dashboard's cookie goes; back to the sign-in form."""
    response = web.HTTPSeeOther("/login")
    response.del_cookie(COOKIE, path="/dashboard")
    raise response
