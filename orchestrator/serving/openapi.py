"""The API's routes, declared once: `create_app` registers them and `/openapi.json` documents them.

A `Route` names its method, path, handler, parameters, whether it needs the token, and the answer of each status
with the pydantic model of its body (`orchestrator.serving.schemas`). `document` turns the routes into OpenAPI 3.1:
the operations from the routes, `components/schemas` from the models' JSON Schema. Nothing is written by hand, so a
route cannot be served undocumented and a documented body is the model its handler answers with.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, JsonSchemaValue
from pydantic_core import core_schema

from orchestrator.serving.schemas import Error

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REF = "#/components/schemas/{model}"
_TEMPLATE = re.compile(r"\{([^}]+)\}")


class _Schema(GenerateJsonSchema):
    """Pydantic's JSON Schema without what would mislead a reader of the document: `default` (a field a stored
    record lacks is absent from the answer, not null) and each property's `title` (its name says it)."""

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        return self.generate_inner(schema["schema"])

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


@dataclass(frozen=True, slots=True)
class Answer:
    """One status of a route: a JSON body of `model`, else a body of `media_type` (`schema`), else none."""

    description: str
    model: type[BaseModel] | None = None
    media_type: str | None = None
    schema: Mapping[str, Any] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)  # name: description (string values)


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    where: Literal["path", "query"]
    schema: Mapping[str, Any]
    description: str | None = None
    examples: Mapping[str, Any] | None = None  # OpenAPI's: name -> {"value": ...}
    required: bool = True  # a path parameter always is


UNAUTHORISED = Answer(
    "Missing or wrong bearer token (with `WWW-Authenticate: Bearer`); the body carries no data.",
    Error,
    headers={"WWW-Authenticate": '`Bearer realm="orchestrator"`, with `error="invalid_token"` for a wrong one'},
)


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    handler: Handler
    operation_id: str
    summary: str
    responses: Mapping[int, Answer]
    description: str | None = None
    params: tuple[Param, ...] = ()
    form: type[BaseModel] | None = None  # the request body, form-encoded (application/x-www-form-urlencoded)
    auth: bool = True  # needs `Authorization: Bearer <ORCH_API_TOKEN>` (the guard answers 401 without it)

    @property
    def answers(self) -> dict[int, Answer]:
        """Every status the route answers: its own, and 401 when it needs the token."""
        return {**self.responses, **({401: UNAUTHORISED} if self.auth else {})}


def public_paths(routes: Iterable[Route]) -> frozenset[str]:
    """Paths served without a token. The API's guard decides by path, before routing (an unknown path says nothing
    either), so every method of a path must agree: ValueError when they do not."""
    public = {route.path for route in routes if not route.auth}
    mixed = public & {route.path for route in routes if route.auth}
    if mixed:
        raise ValueError(f"a path needs the token for some methods only: {sorted(mixed)}")
    return frozenset(public)


def package_version() -> str:
    try:
        return version("orchestrator")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without metadata
        return "0.0.0"


def components(models: Iterable[tuple[type[BaseModel], JsonSchemaMode]]) -> dict[str, Any]:
    """`components/schemas`: each model's JSON Schema and the models it refers to (its `$defs`), by class name."""
    schemas: dict[str, Any] = {}
    for model, mode in models:
        schema = model.model_json_schema(ref_template=REF, schema_generator=_Schema, mode=mode)
        for name, definition in {**schema.pop("$defs", {}), model.__name__: schema}.items():
            if schemas.setdefault(name, definition) != definition:
                raise ValueError(f"two different schemas are named {name}: rename one of the models")
    return dict(sorted(schemas.items()))


def _content(schema: Mapping[str, Any], media_type: str) -> dict[str, Any]:
    return {media_type: {"schema": dict(schema)}}


def _response(answer: Answer) -> dict[str, Any]:
    found: dict[str, Any] = {"description": answer.description}
    if answer.headers:
        found["headers"] = {name: {"description": text, "schema": {"type": "string"}}
                            for name, text in answer.headers.items()}  # fmt: skip
    if answer.model is not None:
        found["content"] = _content({"$ref": REF.format(model=answer.model.__name__)}, "application/json")
    elif answer.media_type is not None:
        found["content"] = _content(answer.schema, answer.media_type)
    return found


def _parameter(param: Param) -> dict[str, Any]:
    found: dict[str, Any] = {"name": param.name, "in": param.where, "required": param.required or param.where == "path",
                             "schema": dict(param.schema)}  # fmt: skip
    if param.description:
        found["description"] = param.description
    if param.examples:
        found["examples"] = dict(param.examples)
    return found


def operation(route: Route) -> dict[str, Any]:
    """The route's OpenAPI operation. Raises ValueError when the path's `{parameters}` and its declared path
    parameters differ."""
    in_path = set(_TEMPLATE.findall(route.path))
    declared = {param.name for param in route.params if param.where == "path"}
    if in_path != declared:
        raise ValueError(f"{route.method} {route.path}: path parameters {sorted(in_path)}, declared {sorted(declared)}")
    found: dict[str, Any] = {"operationId": route.operation_id, "summary": route.summary}
    if route.description:
        found["description"] = route.description
    if not route.auth:
        found["security"] = []
    if route.params:
        found["parameters"] = [_parameter(param) for param in route.params]
    if route.form is not None:
        schema = {"$ref": REF.format(model=route.form.__name__)}
        found["requestBody"] = {"required": True, "content": _content(schema, "application/x-www-form-urlencoded")}
    found["responses"] = {str(status): _response(answer) for status, answer in sorted(route.answers.items())}
    return found


def document(routes: Iterable[Route], title: str, version: str, description: str) -> dict[str, Any]:
    """The OpenAPI 3.1 description of `routes`, every route needing the bearer token unless it says otherwise."""
    paths: dict[str, dict[str, Any]] = {}
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = []
    for route in routes:
        methods = paths.setdefault(route.path, {})
        if route.method.lower() in methods:
            raise ValueError(f"{route.method} {route.path} is declared twice")
        methods[route.method.lower()] = operation(route)
        models += [(answer.model, "serialization") for answer in route.answers.values() if answer.model is not None]
        if route.form is not None:
            models.append((route.form, "validation"))
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "security": [{"bearerAuth": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "description": "the value of ORCH_API_TOKEN"}
            },
            "schemas": components(models),
        },
    }
