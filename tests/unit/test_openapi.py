"""`/openapi.json` is generated from the route table and the models, and the checks of tests/api_contract.py catch
a route or a field left undocumented (no services: the app is built on a Redis client that never connects)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
import redis.asyncio
from aiohttp import web
from pydantic import BaseModel, SecretStr

from orchestrator.engine.affinity import Basket, Models, model_version
from orchestrator.measurement.kpis import summarize
from orchestrator.measurement.report import kpis_of
from orchestrator.serving import schemas
from orchestrator.serving.api import ROUTES, create_app, offer, openapi_document
from orchestrator.serving.keys import SAFE_TRAITS
from orchestrator.serving.openapi import UNAUTHORISED, Answer, Route, components, document, operation
from orchestrator.serving.redis import summary
from orchestrator.settings import Settings
from orchestrator.timefmt import to_ms
from tests.api_contract import (
    WORKER_CUSTOMER,
    body_problems,
    closed,
    documented,
    engine_customer,
    offers,
    route_problems,
    schema_problems,
)

ENDPOINTS = {
    ("GET", "/v1/customers/lookup"), ("GET", "/v1/customers/{customer}"), ("GET", "/v1/customers/{customer}/timeline"),
    ("GET", "/v1/coupons/{code}"), ("GET", "/v1/products/{sku}/complementary"), ("GET", "/v1/kpis"),
    ("GET", "/v1/segments"), ("GET", "/dashboard"), ("GET", "/login"), ("POST", "/login"), ("POST", "/logout"),
    ("GET", "/openapi.json"), ("GET", "/healthz"),
}  # fmt: skip


def app() -> web.Application:
    return create_app(Settings(api_token=SecretStr("unit-token-" + "0" * 32)), redis.asyncio.Redis())


async def nothing(_: web.Request) -> web.Response:
    return web.Response()


def as_json(model: BaseModel) -> bytes:
    return orjson.dumps(schemas.body(model))


Sample = tuple[str, str, int, bytes]  # method, path, status, body


@pytest.fixture(scope="module")
def answers() -> dict[str, Sample]:
    """Every JSON body the API composes, built as its handler builds it from a customer the engine ran through the
    real journeys and the records the worker writes of it (`serving.redis.summary`, coupons as `Serving.publish`
    stores them)."""
    now = datetime.now(UTC)
    engine, simulator = engine_customer(now)
    state = simulator.result.states[WORKER_CUSTOMER]
    coupons = {c.state: c for c in (offer(code, {"code": code, "customer": state.key, **record}, now)
                                    for code, record in offers(simulator).items())}  # fmt: skip
    assert set(coupons) == {"valid", "redeemed"}
    customer = schemas.Customer(
        customer=state.key, summary=schemas.Summary.model_validate(summary(state, to_ms(now))),
        offers=[*coupons.values(), offer("GONE-0000-0000-0000", None, now)],
    )  # fmt: skip
    timeline = schemas.Timeline.model_validate({"customer": state.key, "records": simulator.result.audit})
    kpis = schemas.Kpis.model_validate(summarize(kpis_of(simulator.result).counts, engine.step_order()))
    unknown = schemas.UnknownCoupon(code="GONE-0000-0000-0000", state="unknown", error="unknown coupon")
    models = Models()
    for number, skus in enumerate([("BAG", "SNK-42", "SOCK-1"), ("SNK-42", "SOCK-1"), ("TEE-7",)]):
        models.add(Basket(f"b-{number}", to_ms(now), skus))
    learned = models.at(to_ms(now) + 3_600_000)
    complementary = schemas.Complementary.model_validate({"sku": "SNK-42", "model_version": model_version(
        learned.version), "recommended": learned.recommend(["SNK-42"], (), 3)})  # fmt: skip
    return {
        "coupon": ("GET", "/v1/coupons/{code}", 200, as_json(coupons["valid"])),
        "redeemed coupon": ("GET", "/v1/coupons/{code}", 200, as_json(coupons["redeemed"])),
        "customer": ("GET", "/v1/customers/{customer}", 200, as_json(customer)),
        "timeline": ("GET", "/v1/customers/{customer}/timeline", 200, as_json(timeline)),
        "kpis": ("GET", "/v1/kpis", 200, as_json(kpis)),
        "segments": ("GET", "/v1/segments", 200, as_json(schemas.Segments(segments={"vip": 3},
                                                                          partitions={"0": {"vip": 3}}))),
        "health": ("GET", "/healthz", 503, as_json(schemas.Health(status="unavailable"))),
        "unknown coupon": ("GET", "/v1/coupons/{code}", 404, as_json(unknown)),
        "error": ("GET", "/v1/coupons/{code}", 400, as_json(schemas.Error(error="not a coupon code"))),
        "complementary": ("GET", "/v1/products/{sku}/complementary", 200, as_json(complementary)),
    }


def check(document: dict[str, Any], sample: Sample, strict: bool = True) -> list[str]:
    method, path, status, body = sample
    return body_problems(document, method, path, status, "application/json", body, strict)


# ------------------------------------------------------------------ routes


def test_every_route_served_is_documented_and_every_documented_one_served() -> None:
    served = openapi_document()
    assert route_problems(app(), served) == []
    assert documented(served) == ENDPOINTS  # a declaration removed from ROUTES is noticed here


def test_a_route_served_without_a_declaration_is_reported() -> None:
    timeline = next(route for route in ROUTES if route.path.endswith("/timeline"))
    partial = document([route for route in ROUTES if route is not timeline], "t", "0", "without the timeline")
    assert route_problems(app(), partial) == ["GET /v1/customers/{customer}/timeline is served but not documented"]

    extra = app()
    extra.router.add_post("/v1/customers/{customer}", nothing)  # registered by hand, past the route table
    assert route_problems(extra, openapi_document()) == ["POST /v1/customers/{customer} is served but not documented"]

    stale = openapi_document()
    stale["paths"]["/v1/gone"] = {"get": stale["paths"]["/healthz"]["get"]}
    assert route_problems(app(), stale) == ["GET /v1/gone is documented but not served"]


def test_a_route_must_declare_its_path_parameters_and_come_once() -> None:
    with pytest.raises(ValueError, match="path parameters"):
        operation(Route("GET", "/v1/things/{thing}", nothing, "getThing", "a thing", {200: Answer("ok")}))
    with pytest.raises(ValueError, match="declared twice"):
        document([ROUTES[0], ROUTES[0]], "t", "0", "twice")


def test_every_answer_is_documented_with_its_status_and_model() -> None:
    served = openapi_document()
    for route in ROUTES:
        responses = served["paths"][route.path][route.method.lower()]["responses"]
        assert set(responses) == {str(status) for status in route.answers}, route.path
        assert route.auth == ("security" not in served["paths"][route.path][route.method.lower()])
        assert not route.auth or route.answers[401] is UNAUTHORISED
        for status, answer in route.answers.items():
            if answer.model is not None:
                ref = responses[str(status)]["content"]["application/json"]["schema"]["$ref"]
                assert ref == f"#/components/schemas/{answer.model.__name__}"


# ------------------------------------------------------------------ schemas


def refs(node: Any) -> set[str]:
    """Every `$ref` of the document, and every schema a discriminator maps to."""
    found: set[str] = set()
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            found.add(node["$ref"])
        if isinstance(node.get("discriminator"), dict):
            found.update(node["discriminator"].get("mapping", {}).values())
        node = list(node.values())
    if isinstance(node, list):
        for value in node:
            found |= refs(value)
    return found


def test_the_components_are_json_schema_and_every_reference_resolves() -> None:
    served = openapi_document()
    assert schema_problems(served) == []
    names = set(served["components"]["schemas"])
    assert {ref.removeprefix("#/components/schemas/") for ref in refs(served)} == names  # each used, none missing
    assert orjson.loads(orjson.dumps(served)) == served


def test_closed_answers_allow_no_other_field_and_stored_records_do() -> None:
    served = openapi_document()["components"]["schemas"]
    for name, schema in served.items():
        model = getattr(schemas, name)
        expected = {"forbid": False, "allow": True}[model.model_config["extra"]]
        assert schema["additionalProperties"] is expected, name
    assert {name for name, schema in served.items() if schema["additionalProperties"]} == {
        "AuditRecord", "CartItem", "Coupon", "OfferCandidate", "SentOffer", "Summary",
    }  # fmt: skip


def test_two_models_of_one_name_are_refused() -> None:
    class Error(schemas.Closed):  # not schemas.Error
        reason: str

    with pytest.raises(ValueError, match="named Error"):
        components([(schemas.Error, "serialization"), (Error, "serialization")])


def test_the_traits_served_are_the_safe_traits() -> None:
    assert tuple(schemas.Traits.model_fields) == SAFE_TRAITS


# ------------------------------------------------------------------ bodies


def test_answers_built_from_what_the_worker_writes_are_the_documented_ones(answers: dict[str, Sample]) -> None:
    served = openapi_document()
    for name, sample in answers.items():
        assert check(served, sample) == [], name
    timeline = orjson.loads(answers["timeline"][3])
    kinds = {record["kind"] for record in timeline["records"]}
    assert {"event", "entered", "step", "sent", "matched", "exited", "coupon_redeemed", "converted"} <= kinds


@pytest.mark.parametrize(
    ("component", "field", "answer"),
    [
        ("Coupon", "run", "coupon"),
        ("Coupon", "revenue", "redeemed coupon"),
        ("Coupon", "run", "customer"),  # an offer: in a oneOf
        ("Summary", "cart_value", "customer"),
        ("CartItem", "name", "customer"),
        ("Traits", "tier", "customer"),
        ("UnknownOffer", "code", "customer"),
        ("Customer", "offers", "customer"),
        ("AuditRecord", "until", "timeline"),
        ("Timeline", "records", "timeline"),
        ("Lift", "verdict", "kpis"),
        ("Kpis", "days", "kpis"),
        ("Health", "status", "health"),
        ("UnknownCoupon", "error", "unknown coupon"),
        ("Error", "error", "error"),
        ("Complementary", "model_version", "complementary"),
        ("RecommendedProduct", "source", "complementary"),
    ],
)
def test_a_field_left_undocumented_is_reported(
    answers: dict[str, Sample], component: str, field: str, answer: str
) -> None:
    served = openapi_document()
    less = copy.deepcopy(served)
    schema = less["components"]["schemas"][component]
    del schema["properties"][field]
    schema["required"] = [name for name in schema.get("required", []) if name != field]
    problems = check(less, answers[answer])
    assert any(f"'{field}' was unexpected" in problem for problem in problems), problems
    # Where the served schema lets a stored record carry more, only the strict check reports the field.
    assert bool(check(less, answers[answer], strict=False)) == (schema["additionalProperties"] is False)
    assert check(served, answers[answer]) == []


def test_a_field_no_answer_carries_is_not_reported(answers: dict[str, Sample]) -> None:
    less = copy.deepcopy(openapi_document())
    del less["components"]["schemas"]["AuditRecord"]["properties"]["from"]  # a merge's: this customer never merged
    assert check(less, answers["timeline"]) == []


def test_closed_does_not_change_the_served_document() -> None:
    served = openapi_document()
    before = copy.deepcopy(served)
    strict = closed(served)
    assert served == before and strict["components"]["schemas"]["Coupon"]["additionalProperties"] is False
    assert strict["components"]["schemas"]["Kpis"]["properties"]["days"]["additionalProperties"] == {
        "$ref": "#/components/schemas/DayCounts"
    }


def test_the_records_of_a_decide_step_are_documented_audit_records() -> None:
    """`decided`, the sends of a picked offer and a conversion crediting offers: every field named (strict check)."""
    run = {"at": "2026-03-02T10:00:00Z", "customer": "c-1", "journey": "web-to-store", "version": 2, "run": 1}
    records = [
        {**run, "kind": "decided", "step": "store-offer", "explore": False, "picked": ["cart-10"],
         "candidates": [{"offer": "cart-10", "score": 12.5}, {"offer": "free-gift", "out": "not_eligible"}]},
        {**run, "kind": "sent", "step": "store-offer", "channel": "email", "template": "cart-coupon",
         "action_id": "a1", "offer": "cart-10", "explore": True},
        {**run, "kind": "suppressed", "step": "store-offer", "channel": "email", "template": "cart-coupon",
         "reason": "frequency_cap", "offer": "cart-10"},
        {**run, "kind": "converted", "holdout": False, "event_id": "e-9", "path": ["web", "store"],
         "offers": [{"offer": "cart-10", "explore": False}]},
    ]  # fmt: skip
    timeline = as_json(schemas.Timeline.model_validate({"customer": "c-1", "records": records}))
    assert check(openapi_document(), ("GET", "/v1/customers/{customer}/timeline", 200, timeline)) == []
