"""Every JSON answer a test app gives is checked against the schema `/openapi.json`
declares for its route and status: the spec must describe what is actually sent."""

from __future__ import annotations

import gzip
import json
import re
import zlib
from typing import Any

import brotli
from flask import Flask, Response, request
from jsonschema import Draft202012Validator

try:  # the standard library's from Python 3.14, the backport before
    from compression import zstd
except ImportError:
    from backports import zstd

from autocheckin.api.openapi import build_spec

_RULE_ARGUMENT = re.compile(r"<(?:\w+(?:\([^)]*\))?:)?(\w+)>")


class _Spec:
    """Built once per set of routes (every app the fixtures build has the same ones)."""

    documents: dict[frozenset[str], dict[str, Any]] = {}
    validators: dict[str, Draft202012Validator] = {}


def _spec_of(app: Flask) -> dict[str, Any]:
    routes = frozenset(
        f"{rule.rule} {sorted(rule.methods or ())}" for rule in app.url_map.iter_rules()
    )
    if routes not in _Spec.documents:
        _Spec.documents[routes] = build_spec(app)
    return _Spec.documents[routes]


def _validator(schema: dict[str, Any], components: dict[str, Any]) -> Draft202012Validator:
    key = repr(schema)
    validator = _Spec.validators.get(key)
    if validator is None:
        validator = Draft202012Validator({**schema, "components": components})
        _Spec.validators[key] = validator
    return validator


def declared_schema(spec: dict[str, Any], rule: str, method: str, status: int) -> dict | None:
    path = _RULE_ARGUMENT.sub(r"{\1}", rule)
    operation = spec["paths"].get(path, {}).get(method.lower(), {})
    answer = operation.get("responses", {}).get(str(status), {})
    return answer.get("content", {}).get("application/json", {}).get("schema")


def _decoded(response: Response) -> Any:
    """The JSON of an answer, uncompressed first when its view compressed it."""
    encoding = response.headers.get("Content-Encoding")
    raw = response.get_data()
    if encoding == "gzip":
        raw = gzip.decompress(raw)
    elif encoding == "br":
        raw = brotli.decompress(raw)
    elif encoding == "zstd":
        raw = zstd.decompress(raw)
    elif encoding == "deflate":
        raw = zlib.decompress(raw)
    return json.loads(raw)


def check_answers(app: Flask, mismatches: list[str]) -> None:
    """After each request, validate a JSON answer whose status declares a schema."""

    def check(response: Response) -> Response:
        if request.url_rule is None or not response.is_json:
            return response
        spec = _spec_of(app)
        schema = declared_schema(spec, request.url_rule.rule, request.method, response.status_code)
        if schema is None:
            return response
        validator = _validator(schema, spec["components"])
        body = _decoded(response)
        for error in validator.iter_errors(body):
            where = "/".join(str(part) for part in error.absolute_path)
            mismatches.append(
                f"{request.method} {request.url_rule.rule} → {response.status_code}: "
                f"{where or '(body)'}: {error.message}"
            )
        return response

    app.after_request(check)
