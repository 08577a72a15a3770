"""The size stage: oversized arguments are refused before anything can change.

The transport already answers HTTP 413 to bodies over its limit; this stage sets
tighter, tool-level bounds: the JSON size of all arguments, and the characters one
edit may carry (the `content` / `text` argument of a write tool).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from mcp_types import CallToolResult

from ...registry import BY_NAME, WRITE
from ..errors import INVALID_ARGUMENT, ToolFailure

if TYPE_CHECKING:
    from ..chain import CallNext
    from ..context import CallContext

EDIT_CONTENT_ARGS = ("content", "text")


class ArgumentSizeStage:
    def __init__(self, max_argument_bytes: int, max_edit_chars: int) -> None:
        self.max_argument_bytes = max_argument_bytes
        self.max_edit_chars = max_edit_chars

    async def __call__(self, call: CallContext, call_next: CallNext) -> CallToolResult:
        size = len(json.dumps(call.arguments, ensure_ascii=False, separators=(",", ":"), default=str).encode())
        if size > self.max_argument_bytes:
            raise ToolFailure(
                INVALID_ARGUMENT,
                f"the arguments are {size} bytes; at most {self.max_argument_bytes} are accepted",
                size=size,
                limit=self.max_argument_bytes,
            )
        spec = BY_NAME.get(call.tool)
        if spec is not None and spec.action == WRITE:
            for name in EDIT_CONTENT_ARGS:
                value = call.arguments.get(name)
                if isinstance(value, str) and len(value) > self.max_edit_chars:
                    raise ToolFailure(
                        INVALID_ARGUMENT,
                        f"'{name}' holds {len(value)} characters; one edit may carry at most {self.max_edit_chars}",
                        argument=name,
                        size=len(value),
                        limit=self.max_edit_chars,
                    )
        return await call_next(call)
