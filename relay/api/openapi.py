"""``GET /openapi.json``: an OpenAPI 3.1 document generated from the operations and their models."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from relay import __version__
from relay.api.registry import Operation, Response

REF = "#/components/schemas/{model}"
_PREFIX = "#/components/schemas/"


def document(operations: Iterable[Operation]) -> dict[str, Any]:
    """The whole document. Response bodies that ``fields`` may trim declare no required names."""
    ops = list(operations)
    schemas = _schemas(ops)
    paths: dict[str, dict[str, Any]] = {}
    for op in ops:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "relay",
            "version": __version__,
            "description": "CallFire-compatible Webhooks API (/v2), CallFire callbacks, health.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"basicAuth": {"type": "http", "scheme": "basic"}},
        },
    }


def _schemas(ops: list[Operation]) -> dict[str, Any]:
    models: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {}
    trimmed: set[str] = set()
    for op in ops:
        if op.body is not None:
            models[(op.body, "validation")] = None
        for status, response in op.responses.items():
            if response.model is not None:
                models[(response.model, "serialization")] = None
                if status < 300 and op.query is not None and "fields" in op.query.model_fields:
                    trimmed.add(response.model.__name__)
    _, top = models_json_schema(list(models), ref_template=REF)
    defs: dict[str, Any] = top.get("$defs", {})
    for name in _reachable(trimmed, defs):
        defs[name].pop("required", None)
    return defs


def _reachable(names: set[str], defs: dict[str, Any]) -> set[str]:
    seen: set[str] = set()
    todo = [n for n in names if n in defs]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(r for r in _refs(defs[name]) if r in defs)
    return seen


def _refs(schema: Any) -> Iterable[str]:
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith(_PREFIX):
            yield ref.removeprefix(_PREFIX)
        for value in schema.values():
            yield from _refs(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from _refs(value)


def _operation(op: Operation) -> dict[str, Any]:
    out: dict[str, Any] = {"operationId": op.operation_id, "summary": op.summary, "tags": list(op.tags)}
    params = [
        {"name": p.name, "in": "path", "required": True, "schema": p.schema, "description": p.description}
        for p in op.path_params
    ]
    if op.query is not None:
        params.extend(_query_params(op.query))
    if params:
        out["parameters"] = params
    if op.body is not None:
        ref = {"$ref": REF.format(model=op.body.__name__)}
        out["requestBody"] = {"required": False, "content": {"application/json": {"schema": ref}}}
    out["responses"] = {str(status): _response(r) for status, r in sorted(op.responses.items())}
    out["security"] = [{"basicAuth": []}] if op.authenticated else []
    out.update(op.extra)
    return out


def _query_params(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=REF)
    required = set(schema.get("required", ()))
    params = []
    for name, prop in schema["properties"].items():
        prop = _not_null(dict(prop))
        prop.pop("title", None)
        description = prop.pop("description", "")
        params.append(
            {
                "name": name,
                "in": "query",
                "required": name in required,
                "schema": prop,
                "description": description,
            }
        )
    return params


def _not_null(prop: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is absent rather than null: ``anyOf [X, null]`` becomes X."""
    members = [m for m in prop.pop("anyOf", []) if m != {"type": "null"}]
    if len(members) == 1:
        prop = {**members[0], **prop}
    elif members:
        prop["anyOf"] = members
    if prop.get("default", 0) is None:
        del prop["default"]
    return prop


def _response(response: Response) -> dict[str, Any]:
    out: dict[str, Any] = {"description": response.description}
    if response.model is not None:
        schema: dict[str, Any] | None = {"$ref": REF.format(model=response.model.__name__)}
    else:
        schema = response.schema
    if schema is not None:
        out["content"] = {response.content_type: {"schema": schema}}
    return out


def openapi_handler(operations: Iterable[Operation]) -> Any:
    """A handler serving the document, rendered once."""
    body = orjson.dumps(document(operations))

    async def openapi_json(_: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    return openapi_json
