"""Request parsing with pydantic for the API families."""

from __future__ import annotations

from typing import TypeVar

from flask import request
from pydantic import BaseModel, ValidationError

from autocheckin.validation import invalid_from

ModelT = TypeVar("ModelT", bound=BaseModel)


def parse_query(model: type[ModelT]) -> ModelT:
    """The query string validated against `model` (strings coerced as query values are)."""
    try:
        return model.model_validate(request.args.to_dict())
    except ValidationError as error:
        raise invalid_from(error) from None
