"""The authorize stage: the call's action on every path it touches, or `forbidden`."""

from __future__ import annotations

from mcp_types import CallToolResult

from ...policy.engine import PolicyEngine
from ...registry import READ
from ..chain import CallNext
from ..context import CallContext
from ..errors import FORBIDDEN, ToolFailure

ALLOW, DENY = "allow", "deny"


class AuthorizeStage:
    def __init__(self, engine: PolicyEngine) -> None:
        self.engine = engine

    async def __call__(self, call: CallContext, call_next: CallNext) -> CallToolResult:
        spec = call.spec
        if spec is None:
            raise RuntimeError("the resolve stage must run before the authorize stage")
        principal = call.principal
        engine = self.engine
        call.can_read = lambda path: engine.allowed(principal, READ, path)
        if spec.action is None or spec.filtered:
            # About the caller itself, or a listing whose path only narrows a search
            # that the read filter then prunes: nothing to refuse up front.
            call.decision = ALLOW
            return await call_next(call)
        action = call.action or spec.action
        for path in call.paths:
            if not engine.allowed(principal, action, path):
                call.decision = DENY
                shown = path if path else "/"
                raise ToolFailure(FORBIDDEN, f"{action} on '{shown}' is not allowed")
        call.decision = ALLOW
        return await call_next(call)
