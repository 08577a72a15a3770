"""The rate-limit stage: charges the tool's cost to the caller's budget for its action class."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mcp_types import CallToolResult

if TYPE_CHECKING:
    from ...ratelimit.limiter import RateLimiter
    from ..chain import CallNext
    from ..context import CallContext


class RateLimitStage:
    def __init__(self, limiter: RateLimiter) -> None:
        self.limiter = limiter

    async def __call__(self, call: CallContext, call_next: CallNext) -> CallToolResult:
        assert call.spec is not None, "the resolve stage runs first"
        if not await self.limiter.hit(call.principal, call.spec.rate_class, call.spec.cost):
            call.audit_notes["rate_limit_fail_open"] = True
        return await call_next(call)
