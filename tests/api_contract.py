"""The API against its OpenAPI document: the checks, and a customer as the worker holds it.

Shared by tests/unit/test_openapi.py (the checks themselves, on built documents) and
tests/integration/test_openapi.py (every route called for real, every answer checked). Answers are validated with
`jsonschema`, independently of the pydantic models the document was generated from, and strictly: a field an answer
carries must be named in the document even where the schema lets stored records carry more (`closed`).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from jsonschema import Draft202012Validator, ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from orchestrator.contract.loader import load
from orchestrator.engine import Engine
from orchestrator.simulate import Simulator
from orchestrator.timefmt import format_ms, to_ms
from tests.helpers import ev

ROOT = Path(__file__).parents[1]
SPEC = "urn:orchestrator:openapi"  # the document's URI in the registry: its `#/components/...` refs resolve in it
WORKER_CUSTOMER = "c-2002"
WORKER_EMAIL = "grace@example.com"


# ------------------------------------------------------------------ routes


def registered(app: web.Application) -> set[tuple[str, str]]:
    """(METHOD, path template) of every route of the app, less the HEAD that aiohttp adds to each GET."""
    routes = {(route.method, route.resource.canonical) for route in app.router.routes() if route.resource}
    return {(method, path) for method, path in routes if method != "HEAD" or ("GET", path) not in routes}


def documented(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, operations in document["paths"].items() for method in operations}


def route_problems(app: web.Application, document: dict[str, Any]) -> list[str]:
    served, described = registered(app), documented(document)
    return [f"{method} {path} is served but not documented" for method, path in sorted(served - described)] + [
        f"{method} {path} is documented but not served" for method, path in sorted(described - served)
    ]


def template_of(document: dict[str, Any], path: str) -> str:
    """The documented path template a request path is routed to (the first that matches, as aiohttp routes)."""
    for template in map(str, document["paths"]):
        if re.fullmatch(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)), path):
            return template
    raise AssertionError(f"{path} matches no documented path")


# ------------------------------------------------------------------ bodies


def closed(document: dict[str, Any]) -> dict[str, Any]:
    """A copy of the document where every object schema that names its properties allows no other: what a real
    answer carries must be documented, even a stored record's field that the served schema lets through."""

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(item) for item in node]
        if not isinstance(node, dict):
            return node
        found = {key: walk(value) for key, value in node.items()}
        if isinstance(found.get("properties"), dict) and found.get("additionalProperties", True) is True:
            found["additionalProperties"] = False
        return found

    strict: dict[str, Any] = walk(copy.deepcopy(document))
    return strict


def _pointer(*parts: str) -> str:
    return "#/" + "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)


def _messages(errors: Iterable[ValidationError]) -> Iterator[str]:
    """Each error with where it is; a failed oneOf/anyOf with its branches' reasons."""
    for error in errors:
        yield f"at {error.json_path}: {error.message}"
        yield from _messages(error.context or ())


def body_problems(
    document: dict[str, Any], method: str, path: str, status: int, content_type: str, body: bytes, strict: bool = True
) -> list[str]:
    """Why an answer (status, content type, body) is not the documented one of `method path`; [] when it is.
    `strict`: check against `closed(document)`, so an undocumented field is a problem wherever it is."""
    where = f"{method} {path} {status}"
    responses = document["paths"][path][method.lower()]["responses"]
    if str(status) not in responses:
        return [f"{where}: status not documented (documented: {sorted(responses)})"]
    content = responses[str(status)].get("content")
    if content is None:
        return []  # no body documented (a redirect): aiohttp's own text is no contract
    if content_type not in content:
        return [f"{where}: answered {content_type}, documented {sorted(content)}"]
    if content_type != "application/json":
        return []
    checked = closed(document) if strict else document
    registry = Registry().with_resource(SPEC, Resource.from_contents(checked, default_specification=DRAFT202012))
    pointer = _pointer("paths", path, method.lower(), "responses", str(status), "content", content_type, "schema")
    validator = Draft202012Validator({"$ref": SPEC + pointer}, registry=registry)
    return [f"{where}: {message}" for message in _messages(validator.iter_errors(orjson.loads(body)))]


def schema_problems(document: dict[str, Any]) -> list[str]:
    """Component schemas that are not valid JSON Schema (2020-12, OpenAPI 3.1's dialect)."""
    problems = []
    for name, schema in document["components"]["schemas"].items():
        try:
            Draft202012Validator.check_schema(schema)
        except Exception as error:
            problems.append(f"{name}: {error}")
    return problems


# ------------------------------------------------------------------ a customer as the worker holds it


def engine_customer(now: datetime) -> tuple[Engine, Simulator]:
    """`WORKER_CUSTOMER` run through the real journeys in the hour before `now`: e-mail consent, sign-up (the
    welcome coupon), a web cart, a store visit (the in-store coupon), the welcome coupon redeemed with a value."""
    loaded = load([ROOT / "journeys"])
    engine = Engine.of(loaded)
    simulator = Simulator(engine, record_events=True)

    def at(minutes: int) -> str:
        return format_ms(to_ms(now - timedelta(hours=1) + timedelta(minutes=minutes)))

    c = WORKER_CUSTOMER
    for event in (
        ev("consent_update", at(0), c, "web", channel="email", granted=True),
        ev("identify", at(1), c, "web", first_name="Grace", tier="silver", email=WORKER_EMAIL),
        ev("cart_add", at(2), c, "web", sku="SKU-9", price=19.5, quantity=2, name="Mug"),
        ev("store_visit", at(3), c, "store", store_id="S-1"),
    ):
        simulator.feed(event)
    welcome = next(code for code, offer in offers(simulator).items() if offer["journey"] == "welcome")
    simulator.feed(ev("coupon_redeemed", at(4), c, "store", code=welcome, store_id="S-1", order_id="o-1", value=42.0))
    return engine, simulator


def offers(simulator: Simulator) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = simulator.result.states[WORKER_CUSTOMER].profile["offers"]
    return found
