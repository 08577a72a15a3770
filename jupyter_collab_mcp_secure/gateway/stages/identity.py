"""First stage: a call without a verified principal never starts."""

from __future__ import annotations

from mcp_types import CallToolResult

from ..chain import CallNext
from ..context import CallContext
from ..errors import FORBIDDEN, ToolFailure


class IdentityStage:
    async def __call__(self, call: CallContext, call_next: CallNext) -> CallToolResult:
        # The handler authenticates every HTTP request; this guards the in-process path into the chain.
        if call.principal is None or not call.principal.user:
            raise ToolFailure(FORBIDDEN, "no authenticated principal")
        return await call_next(call)
