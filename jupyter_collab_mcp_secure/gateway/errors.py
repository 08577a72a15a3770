"""Failures an agent can act on, as the structured tool errors of the contract."""

from __future__ import annotations

import json
from typing import Any

from mcp_types import CallToolResult, TextContent

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
    """The contract error code carried by a tool result, if it is an error."""
    if not getattr(result, "is_error", False):
        return None
    structured = getattr(result, "structured_content", None) or {}
    error = structured.get("error") if isinstance(structured, dict) else None
    return error.get("code") if isinstance(error, dict) else "error"
