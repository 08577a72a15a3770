"""Failures an agent can act on, as the structured tool errors of the contract."""

from __future__ import annotations

import json
import re
from typing import Any

from mcp_types import CallToolResult, TextContent
from pydantic import ValidationError

FORBIDDEN = "forbidden"
RATE_LIMITED = "rate_limited"
NOT_FOUND = "not_found"
INVALID_ARGUMENT = "invalid_argument"
CONFLICT = "conflict"
TIMEOUT = "timeout"
UNAVAILABLE = "unavailable"

ERROR_CODES = frozenset({FORBIDDEN, RATE_LIMITED, NOT_FOUND, INVALID_ARGUMENT, CONFLICT, TIMEOUT, UNAVAILABLE})


class ToolFailure(Exception):
    """Raised anywhere below the chain; becomes an `isError` result, never a crash."""

    def __init__(self, code: str, message: str, **details: Any) -> None:
        if code not in ERROR_CODES:
            raise ValueError(f"unknown error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details

    def to_result(self) -> CallToolResult:
        return error_result(self.code, self.message, **self.details)


def error_result(code: str, message: str, **details: Any) -> CallToolResult:
    body = {"error": {"code": code, "message": message, **details}}
    return CallToolResult(
        content=[TextContent(type="text", text=json.dumps(body))],
        structured_content=body,
        is_error=True,
    )


def ok_result(payload: dict[str, Any]) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=json.dumps(payload, default=str))],
        structured_content=payload,
    )


def error_code_of(result: Any) -> str | None:
    """The contract error code carried by a tool result (a model, or the SDK's wire dict), if it is an error."""
    if isinstance(result, dict):
        if not result.get("isError"):
            return None
        structured = result.get("structuredContent") or {}
    elif not getattr(result, "is_error", False):
        return None
    else:
        structured = getattr(result, "structured_content", None) or {}
    error = structured.get("error") if isinstance(structured, dict) else None
    return error.get("code") if isinstance(error, dict) else "error"


# pydantic's tail ("unable to parse string as an integer") repeats what the message says about the value.
_PYDANTIC_DETAIL = re.compile(r", (?:unable to|got|input) .*$")

_JSON_TYPES = {
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    list: "an array",
    dict: "an object",
    type(None): "null",
}


def _argument_name(loc: tuple[Any, ...]) -> str:
    name = str(loc[0]) if loc else "arguments"
    return name + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc[1:])


def validation_message(exc: ValidationError) -> str:
    """One line naming the argument and what was expected, instead of pydantic's multi-line report."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    name = _argument_name(tuple(first["loc"]))
    if first["type"] == "missing":
        line = f"missing required argument '{name}'"
    else:
        expected = _PYDANTIC_DETAIL.sub("", first["msg"].removeprefix("Input should be ").removeprefix("Value error, "))
        got = _JSON_TYPES.get(type(first.get("input")), type(first.get("input")).__name__)
        line = f"argument '{name}' should be {expected}, not {got}"
    more = len({tuple(error["loc"])[:1] for error in errors}) - 1
    return line + (f" (and {more} more argument{'s' if more > 1 else ''} wrong)" if more > 0 else "")


def unexpected_arguments(extra: list[str], known: list[str]) -> str:
    listed = ", ".join(f"'{name}'" for name in extra)
    return f"unexpected argument{'s' if len(extra) > 1 else ''} {listed}; this tool takes {', '.join(known)}"
