"""Pydantic validation errors as domain errors: the message names the first bad field."""

from __future__ import annotations

from pydantic import ValidationError

from autocheckin.attendance.errors import Invalid


def invalid_from(error: ValidationError) -> Invalid:
    """The first problem as the message (naming the field), all of them as details."""
    problems = error.errors()
    first = problems[0]
    field = str(first["loc"][0]) if first["loc"] else "request"
    details = "; ".join(
        f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}"
        for problem in problems
    )
    return Invalid(
        f"Invalid value for {field}: {first['msg']}", code="invalid_field", details=details
    )
