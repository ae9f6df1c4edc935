"""Input checks shared by every family: pydantic errors as domain errors naming the field,
JSON nesting depth, and control characters."""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from autocheckin.errors import Invalid


def invalid_from(error: ValidationError, kind: type[Invalid] = Invalid) -> Invalid:
    """The first problem as the message (naming the field), all of them as details; as
    `kind` where the caller's family has its own (a webhook batch keeps the core's per item)."""
    problems = error.errors()
    first = problems[0]
    field = str(first["loc"][0]) if first["loc"] else "request"
    details = "; ".join(
        f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}"
        for problem in problems
    )
    return kind(f"Invalid value for {field}: {first['msg']}", code="invalid_field", details=details)


# JSON deeper than this is refused before anything walks it recursively (pydantic, the
# database's JSON encoder): no payload of any guide nests more than four levels.
MAX_JSON_DEPTH = 32
# C0 controls and DEL, but tab, newline and carriage return (descriptions have lines).
# ... and lone UTF-16 surrogates, which no database can store as text.
CONTROL_CHARACTER = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
# The same refusal as a JSON Schema `pattern` (ECMA-262) for /openapi.json. Lone surrogates
# are left out: JSON text in UTF-8 cannot carry them, and schema regex engines refuse them.
CONTROL_CHARACTER_FREE = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"


def is_too_deep(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether arrays and objects nest deeper than `limit`; iterative, so it cannot recurse."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def json_problem(value: Any, limit: int = MAX_JSON_DEPTH) -> str | None:
    """One pass over a parsed body: "depth", "nul", "control" (a control character
    elsewhere) or None. Paths are only worked out, by the slower walks below, when needed."""
    stack = [(value, 1)]
    problem = None
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            match = CONTROL_CHARACTER.search(item)
            if match:
                if "\x00" in item:
                    return "nul"
                problem = "control"
            continue
        if isinstance(item, dict):
            children = list(item.values()) + list(item.keys())
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return "depth"
        stack.extend((child, depth + 1) for child in children)
    return problem


def field_with_control_character(value: Any) -> str | None:
    """The dotted path of the first string (key or value) holding a control character."""
    return _first_field(value, CONTROL_CHARACTER)


def _first_field(value: Any, pattern: re.Pattern[str]) -> str | None:
    stack = [(value, "")]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if pattern.search(item):
                return where or "body"
        elif isinstance(item, dict):
            for key, child in item.items():
                name = f"{where}.{key}" if where else str(key)
                if isinstance(key, str) and pattern.search(key):
                    return name
                stack.append((child, name))
        elif isinstance(item, list):
            stack.extend((child, f"{where}[{index}]") for index, child in enumerate(item))
    return None
