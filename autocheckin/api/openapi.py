"""`/openapi.json`, built from the live URL map and the pydantic models routes declare.

Walking `app.url_map` means the document lists every route that exists and nothing
that does not; `@documented(...)` adds the summary, auth and the request/response models.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask
from pydantic import BaseModel

from autocheckin.version import __version__

_RULE_ARGUMENT = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")
_CONVERTER_TYPES = {"int": "integer", "float": "number"}

SECURITY_SCHEMES = {
    "checkoutKey": {"type": "apiKey", "in": "header", "name": "x-checkout-key"},
    "webhookSignature": {"type": "apiKey", "in": "header", "name": "X-Webhook-Signature"},
    "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
}


@dataclass(frozen=True)
class OperationDoc:
    summary: str
    body: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    security: tuple[str, ...] = ()
    status: int = 200
    errors: tuple[int, ...] = field(default_factory=tuple)
    also: tuple[int, ...] = ()  # other success statuses answering the same model
    produces: str | None = None  # a media type other than JSON (text/csv, text/calendar)
    # Success statuses answering another model than `response` (202 "still running": …).
    answers: tuple[tuple[int, type[BaseModel]], ...] = ()


def documented(
    summary: str,
    *,
    body: type[BaseModel] | None = None,
    response: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    security: tuple[str, ...] = (),
    status: int = 200,
    errors: tuple[int, ...] = (),
    also: tuple[int, ...] = (),
    produces: str | None = None,
    answers: tuple[tuple[int, type[BaseModel]], ...] = (),
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Attach OpenAPI details to a view; the route itself is found from the URL map."""
    doc = OperationDoc(
        summary, body, response, query, security, status, errors, also, produces, answers
    )

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        view.openapi = doc  # type: ignore[attr-defined]
        return view

    return decorate


def _schema_ref(
    model: type[BaseModel], components: dict[str, Any], mode: str = "validation"
) -> dict[str, str]:
    """Answers are described as they are serialized (field names, times as strings),
    bodies and queries as they are validated."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}", mode=mode)
    components.update(schema.pop("$defs", {}))
    components[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema()
    required = set(schema.get("required", []))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": prop}
        for name, prop in schema.get("properties", {}).items()
    ]


def _operation(rule: Any, method: str, view: Callable[..., Any], components: dict) -> dict:
    doc: OperationDoc | None = getattr(view, "openapi", None)
    summary = doc.summary if doc else (view.__doc__ or rule.endpoint).strip().splitlines()[0]
    operation: dict[str, Any] = {
        "operationId": f"{rule.endpoint.replace('.', '_')}_{method.lower()}",
        "summary": summary,
        "tags": [rule.endpoint.split(".")[0]],
        "parameters": [
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": {"type": _CONVERTER_TYPES.get(converter or "", "string")},
            }
            for converter, name in _RULE_ARGUMENT.findall(rule.rule)
        ],
    }
    status = str(doc.status) if doc else "200"
    ok: dict[str, Any] = {"description": "Success"}
    if doc and doc.response:
        schema = _schema_ref(doc.response, components, mode="serialization")
        ok["content"] = {"application/json": {"schema": schema}}
    elif doc and doc.produces:
        ok["content"] = {doc.produces: {"schema": {"type": "string"}}}
    operation["responses"] = {status: ok}
    for also in doc.also if doc else ():
        operation["responses"][str(also)] = ok
    for code, model in doc.answers if doc else ():
        schema = _schema_ref(model, components, mode="serialization")
        operation["responses"][str(code)] = {
            "description": "Success",
            "content": {"application/json": {"schema": schema}},
        }
    for code in doc.errors if doc else ():
        operation["responses"][str(code)] = {"description": "Error"}
    if doc and doc.query:
        operation["parameters"] += _query_parameters(doc.query)
    if doc and doc.body and method in {"POST", "PUT", "PATCH"}:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _schema_ref(doc.body, components)}},
        }
    if doc and doc.security:
        operation["security"] = [{name: []} for name in doc.security]
    return operation


def build_spec(app: Flask) -> dict[str, Any]:
    """The OpenAPI 3.1 document for every route registered on `app`."""
    paths: dict[str, dict[str, Any]] = {}
    components: dict[str, Any] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        view = app.view_functions[rule.endpoint]
        path = _RULE_ARGUMENT.sub(r"{\2}", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(rule, method, view, components)
    return {
        "openapi": "3.1.0",
        "info": {"title": "AutoCheckin", "version": __version__},
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": SECURITY_SCHEMES},
    }
