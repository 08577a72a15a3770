"""The rate-limit stage: charges the tool's cost to the caller's budget for its action class."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mcp_types import CallToolResult

from ...registry import BY_NAME, READ

if TYPE_CHECKING:
    from ...ratelimit.limiter import RateLimiter
    from ..chain import CallNext
    from ..context import CallContext


class RateLimitStage:
    def __init__(self, limiter: RateLimiter) -> None:
        self.limiter = limiter

    async def __call__(self, call: CallContext, call_next: CallNext) -> CallToolResult:
        spec = call.spec or BY_NAME.get(call.tool)
        # A call the registry does not know still spends budget: nothing is free of limits.
        rate_class, cost = (spec.rate_class, spec.cost) if spec else (READ, 1)
        await self.limiter.hit(call.principal, rate_class, cost)
        return await call_next(call)
