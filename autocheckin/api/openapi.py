"""`/openapi.json`, built from the live URL map and the pydantic models routes declare.

Walking `app.url_map` means the document lists every route that exists and nothing
that does not; `@documented(...)` adds the summary, auth and the request/response models.
The statuses an operation can answer are its own (`errors=`) and those of the guards in
front of it (`@answers(...)` on a family's `before_request` or a view's wrapper); a path
argument adds 404 (no route when it does not fit its converter), a JSON body 400 (nesting
deeper than the bound) and 413. Request schemas declare what `refuse_control_characters`
refuses: no string, key or nested value holds a control character.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask
from pydantic import BaseModel
from werkzeug.routing import IntegerConverter
from werkzeug.routing.converters import NumberConverter

from autocheckin.validation import CONTROL_CHARACTER_FREE
from autocheckin.version import __version__

_RULE_ARGUMENT = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")

SECURITY_SCHEMES = {
    "checkoutKey": {"type": "apiKey", "in": "header", "name": "x-checkout-key"},
    "webhookSignature": {"type": "apiKey", "in": "header", "name": "X-Webhook-Signature"},
    "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
}
# What each way of calling can answer before the route runs: a wrong key counts towards
# the client's lockout (429, `key_accepted`), a token needs JWT_SECRET_KEY (503).
SECURITY_ANSWERS = {
    "checkoutKey": (401, 429),
    "webhookSignature": (401,),
    "bearerAuth": (401, 503),
}


# In `security=`: the operation also answers callers that send no credentials at all.
ANONYMOUS = "anonymous"
# Any JSON value whose strings and keys hold no control character: what every request
# family accepts where a model does not say more (extra fields, free-form metadata).
CLEAN_JSON = "CleanJSON"
_CLEAN_JSON_REF = {"$ref": f"#/components/schemas/{CLEAN_JSON}"}
_NO_CONTROL = {"pattern": CONTROL_CHARACTER_FREE}
_CLEAN_JSON_SCHEMA = {
    "description": "Any JSON value; no string or key in it holds a control character",
    "anyOf": [
        {"type": "string", **_NO_CONTROL},
        {"type": ["number", "boolean", "null"]},
        {"type": "array", "items": _CLEAN_JSON_REF},
        {"type": "object", "propertyNames": _NO_CONTROL, "additionalProperties": _CLEAN_JSON_REF},
    ],
}
_SCHEMA_KEYWORDS = {"type", "$ref", "anyOf", "oneOf", "allOf", "enum", "const", "not"}
# A request model's component is named apart from the same model as an answer.
INPUT_SUFFIX = "-Input"


@dataclass(frozen=True)
class GuardAnswers:
    statuses: tuple[int, ...]
    skips: frozenset[str]


def answers(
    *statuses: int, skips: Iterable[str] = ()
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare the statuses a guard can answer for every route behind it (but the endpoints
    in `skips`); `/openapi.json` adds them to each of those operations."""

    def mark(guard: Callable[..., Any]) -> Callable[..., Any]:
        guard.openapi_answers = GuardAnswers(statuses, frozenset(skips))  # type: ignore[attr-defined]
        return guard

    return mark


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
    produces: str | tuple[str, ...] | None = None  # not JSON (text/csv, text/calendar)
    # Success statuses answering another model than `response` (202 "still running": …).
    other_answers: tuple[tuple[int, type[BaseModel]], ...] = ()


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
    produces: str | tuple[str, ...] | None = None,
    other_answers: tuple[tuple[int, type[BaseModel]], ...] = (),
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Attach OpenAPI details to a view; the route itself is found from the URL map."""
    doc = OperationDoc(
        summary, body, response, query, security, status, errors, also, produces, other_answers
    )

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        view.openapi = doc  # type: ignore[attr-defined]
        return view

    return decorate


def _schema_ref(
    model: type[BaseModel], components: dict[str, Any], mode: str = "validation"
) -> dict[str, str]:
    """Answers are described as they are serialized (field names, times as strings),
    bodies and queries as they are validated, with what is refused in them declared."""
    suffix = INPUT_SUFFIX if mode == "validation" else ""
    template = "#/components/schemas/{model}" + suffix
    schema = model.model_json_schema(ref_template=template, mode=mode)
    definitions = {f"{name}{suffix}": value for name, value in schema.pop("$defs", {}).items()}
    definitions[f"{model.__name__}{suffix}"] = schema
    if mode == "validation":
        definitions = {name: declare_refusals(value) for name, value in definitions.items()}
        components[CLEAN_JSON] = _CLEAN_JSON_SCHEMA
    components.update(definitions)
    return {"$ref": f"#/components/schemas/{model.__name__}{suffix}"}


def declare_refusals(schema: Any) -> Any:
    """`schema` with the control-character refusal declared on every string, key and
    free-form value in it (a value no keyword constrains is any clean JSON value)."""
    if isinstance(schema, list):
        return [declare_refusals(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if not _SCHEMA_KEYWORDS & schema.keys():
        return {**schema, **_CLEAN_JSON_REF}
    node = dict(schema)
    for key in ("properties", "patternProperties", "dependentSchemas"):
        if key in node:
            node[key] = {name: declare_refusals(value) for name, value in node[key].items()}
    for key in ("items", "additionalProperties", "anyOf", "oneOf", "allOf", "prefixItems"):
        if key in node and not isinstance(node[key], bool):
            node[key] = declare_refusals(node[key])
    types = node.get("type", [])
    types = [types] if isinstance(types, str) else types
    if "string" in types:
        if "pattern" in node:
            node["allOf"] = [*node.get("allOf", []), _NO_CONTROL]
        else:
            node.update(_NO_CONTROL)
    if "object" in types:
        node.setdefault("propertyNames", _NO_CONTROL)
        if node.get("additionalProperties", True) in (True, {}):
            node["additionalProperties"] = _CLEAN_JSON_REF
    return node


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema()
    required = set(schema.get("required", []))
    return [
        {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": declare_refusals(prop),
        }
        for name, prop in schema.get("properties", {}).items()
    ]


def _path_parameter(rule: Any, name: str) -> dict[str, Any]:
    """Its converter's type and bounds; a string never holds a control character (the app
    answers 404 for such a path)."""
    converter = rule._converters.get(name)  # werkzeug keeps each argument's converter here
    schema: dict[str, Any] = {"type": "string", **_NO_CONTROL}
    if isinstance(converter, NumberConverter):
        schema = {"type": "integer" if isinstance(converter, IntegerConverter) else "number"}
        for keyword, bound in (("minimum", converter.min), ("maximum", converter.max)):
            if bound is not None:
                schema[keyword] = bound
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _guard_statuses(app: Flask, rule: Any, view: Callable[..., Any]) -> set[int]:
    """What the guards in front of this route answer: the app's and its blueprints'
    `before_request` functions, and the wrappers around the view."""
    blueprints = rule.endpoint.split(".")[:-1]
    scopes = [None, *(".".join(blueprints[: depth + 1]) for depth in range(len(blueprints)))]
    guards = [guard for scope in scopes for guard in app.before_request_funcs.get(scope, ())]
    wrapper: Any = view
    while wrapper is not None:
        guards.append(wrapper)
        wrapper = getattr(wrapper, "__wrapped__", None)
    statuses: set[int] = set()
    for guard in guards:
        declared: GuardAnswers | None = getattr(guard, "openapi_answers", None)
        if declared and rule.endpoint not in declared.skips:
            statuses.update(declared.statuses)
    return statuses


def _operation(
    app: Flask,
    rule: Any,
    method: str,
    view: Callable[..., Any],
    components: dict,
    shared_paths: set[str],
) -> dict:
    doc: OperationDoc | None = getattr(view, "openapi", None)
    summary = doc.summary if doc else (view.__doc__ or rule.endpoint).strip().splitlines()[0]
    operation: dict[str, Any] = {
        "operationId": f"{rule.endpoint.replace('.', '_')}_{method.lower()}",
        "summary": summary,
        "tags": [rule.endpoint.split(".")[0]],
        "parameters": [
            _path_parameter(rule, name) for _, name in _RULE_ARGUMENT.findall(rule.rule)
        ],
    }
    status = str(doc.status) if doc else "200"
    ok: dict[str, Any] = {"description": "Success"}
    if doc and doc.response:
        schema = _schema_ref(doc.response, components, mode="serialization")
        ok["content"] = {"application/json": {"schema": schema}}
    elif doc and doc.produces:
        media_types = (doc.produces,) if isinstance(doc.produces, str) else doc.produces
        ok["content"] = {media: {"schema": {"type": "string"}} for media in media_types}
    operation["responses"] = {status: ok}
    for also in doc.also if doc else ():
        operation["responses"][str(also)] = ok
    for code, model in doc.other_answers if doc else ():
        schema = _schema_ref(model, components, mode="serialization")
        operation["responses"][str(code)] = {
            "description": "Success",
            "content": {"application/json": {"schema": schema}},
        }
    has_body = bool(doc and doc.body and method in {"POST", "PUT", "PATCH"})
    errors = set(doc.errors if doc else ()) | _guard_statuses(app, rule, view)
    for name in doc.security if doc else ():
        errors.update(SECURITY_ANSWERS.get(name, ()))
    if doc and ANONYMOUS in doc.security:
        errors.discard(401)
    if rule.arguments:
        errors.add(404)
        if rule.rule in shared_paths:
            # An argument that does not fit its converter on a path other methods share
            # is answered 405 by Werkzeug's router (the other rules' methods), not 404.
            errors.add(405)
    if has_body:
        errors.update((400, 413))
    for code in sorted(errors - {int(code) for code in operation["responses"]}):
        operation["responses"][str(code)] = {"description": "Error"}
    if doc and doc.query:
        operation["parameters"] += _query_parameters(doc.query)
    if has_body and doc and doc.body:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _schema_ref(doc.body, components)}},
        }
    if doc and doc.security:
        operation["security"] = [{} if name == ANONYMOUS else {name: []} for name in doc.security]
    return operation


def build_spec(app: Flask) -> dict[str, Any]:
    """The OpenAPI 3.1 document for every route registered on `app`."""
    paths: dict[str, dict[str, Any]] = {}
    components: dict[str, Any] = {}
    rules = Counter(rule.rule for rule in app.url_map.iter_rules())
    shared_paths = {path for path, count in rules.items() if count > 1}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        view = app.view_functions[rule.endpoint]
        path = _RULE_ARGUMENT.sub(r"{\2}", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            operation = _operation(app, rule, method, view, components, shared_paths)
            paths.setdefault(path, {})[method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "AutoCheckin", "version": __version__},
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": SECURITY_SCHEMES},
    }
