"""Reading requests for the API families: query strings and JSON bodies validated by
pydantic models, refused in the family's own words when they do not fit."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, TypeVar

from flask import request
from pydantic import AfterValidator, BaseModel, BeforeValidator, ValidationError, WithJsonSchema

from autocheckin.errors import Invalid, Unprocessable
from autocheckin.times import to_utc
from autocheckin.validation import field_with_control_character, invalid_from

ModelT = TypeVar("ModelT", bound=BaseModel)

ISO_DATE = re.compile(r"\d{4}-\d\d-\d\d")


def _iso_text(value: Any) -> Any:
    """An ISO 8601 text, never a number: pydantic alone would take `0.5` for a Unix time."""
    if isinstance(value, datetime) or (isinstance(value, str) and ISO_DATE.match(value)):
        return value
    raise ValueError("expected an ISO 8601 date-time")


# Naive times in these APIs are taken as UTC; the accepted range is the webhooks' own
# (`times.EARLIEST` to `times.LATEST`), declared as the years 1900 to 8999.
UTCDatetime = Annotated[
    datetime,
    BeforeValidator(_iso_text),
    AfterValidator(to_utc),
    WithJsonSchema(
        {"type": "string", "format": "date-time", "pattern": r"^(19\d\d|[2-8]\d{3})-\d\d-\d\d"},
        mode="validation",
    ),
]


def parse_query(model: type[ModelT]) -> ModelT:
    """The query string validated against `model` (strings coerced as query values are);
    400 (`Invalid`) naming the parameter when it does not fit."""
    try:
        return model.model_validate(request.args.to_dict())
    except ValidationError as error:
        raise invalid_from(error) from None


def parse_args(model: type[ModelT]) -> ModelT:
    """The query string, as `parse_query` reads it, refused with 422 like the bodies of the
    events, accounts and Discord families."""
    refuse_control_characters(request.args.to_dict())
    try:
        return parse_query(model)
    except Invalid as error:
        raise Unprocessable(error.message) from None


def parse_body(model: type[ModelT]) -> ModelT:
    """The JSON body validated against `model`; 422 naming the field when it does not fit."""
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        raise Unprocessable("Request body must be a JSON object")
    refuse_control_characters(payload)
    try:
        return model.model_validate(payload)
    except ValidationError as error:
        raise Unprocessable(invalid_from(error).message) from None


def parse_values(model: type[ModelT], values: dict[str, Any]) -> ModelT:
    """Values gathered from several places (a query string and a body), as `parse_body`."""
    refuse_control_characters(values)
    try:
        return model.model_validate(values)
    except ValidationError as error:
        raise Unprocessable(invalid_from(error).message) from None


def refuse_control_characters(values: Any) -> None:
    """422 naming the field: a NUL is refused by PostgreSQL, a newline forges log lines."""
    field = field_with_control_character(values)
    if field is not None:
        raise Unprocessable(f"Invalid value for {field}: control characters are not allowed")


def parse_json(model: type[ModelT]) -> ModelT:
    """The JSON body validated against `model`, refused with 400 naming the field: the
    integration guide's families answer 400 for every invalid parameter."""
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        raise Invalid("Request body must be a JSON object", code="invalid_json")
    field = field_with_control_character(payload)
    if field is not None:
        raise Invalid(f"Invalid value for {field}: control characters are not allowed")
    try:
        return model.model_validate(payload)
    except ValidationError as error:
        raise invalid_from(error) from None
