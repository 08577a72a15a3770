"""The authorize stage: the call's action on every path it touches, or `forbidden`."""

from __future__ import annotations

from mcp_types import CallToolResult

from ...policy.engine import PolicyEngine
from ...policy.functions import ALLOW, DENY
from ...policy.glob import path_problem
from ...registry import READ
from ..chain import CallNext
from ..context import CallContext
from ..errors import FORBIDDEN, INVALID_ARGUMENT, ToolFailure


class AuthorizeStage:
    def __init__(self, engine: PolicyEngine, documentless: frozenset[str] = frozenset()) -> None:
        self.engine = engine
        # Tools whose document argument is optional (policy.tool_paths): without one they act on no document.
        self.documentless = documentless

    async def __call__(self, call: CallContext, call_next: CallNext) -> CallToolResult:
        spec = call.spec
        if spec is None:
            raise RuntimeError("the resolve stage must run before the authorize stage")
        principal = call.principal
        engine = self.engine
        call.can_read = lambda path: engine.allowed(principal, READ, path)
        for path in call.paths:
            # Refused before any matching: no rule is ever run on an unbounded caller-chosen string.
            problem = path_problem(path)
            if problem:
                call.decision = DENY
                raise ToolFailure(INVALID_ARGUMENT, problem)
        if spec.action is None or spec.filtered:
            # About the caller itself, or a listing whose path only narrows a search
            # that the read filter then prunes: nothing to refuse up front.
            call.decision = ALLOW
            return await call_next(call)
        if not call.paths and spec.name not in self.documentless:
            # Deciding on no path would allow anything: a document tool must name its document.
            call.decision = DENY
            raise ToolFailure(INVALID_ARGUMENT, f"'{spec.name}' needs the document it acts on")
        action = call.action or spec.action
        for path in call.paths:
            if not engine.allowed(principal, action, path):
                call.decision = DENY
                self._note_rule(call, action, path)
                shown = path if path else "/"
                raise ToolFailure(FORBIDDEN, f"{action} on '{shown}' is not allowed")
        call.decision = ALLOW
        if call.paths:
            self._note_rule(call, action, call.paths[-1])
        return await call_next(call)

    def _note_rule(self, call: CallContext, action: str, path: str) -> None:
        # What decided, so a replay against a candidate policy (`policy simulate`) can show it.
        rule = self.engine.deciding_rule(call.principal, action, path)
        if rule is not None:
            call.audit_notes["rule"] = rule
