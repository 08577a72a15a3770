"""The audit stage: wraps everything after it and records one line per call with its final outcome.

It refuses calls while the trail cannot write (fail-closed), because a call that
leaves no record is what a compliance review must never find.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from mcp_types import CallToolResult

from ..errors import FORBIDDEN, RATE_LIMITED, UNAVAILABLE, ToolFailure, error_code_of

if TYPE_CHECKING:
    from ...audit.trail import AuditTrail
    from ..chain import CallNext
    from ..context import CallContext

OUTCOME_BY_CODE = {FORBIDDEN: "denied", RATE_LIMITED: "rate_limited"}
CLIENT_DISCONNECTED = "client_disconnected"


class AuditStage:
    def __init__(self, trail: AuditTrail) -> None:
        self.trail = trail

    async def __call__(self, call: CallContext, call_next: CallNext) -> CallToolResult:
        started = time.perf_counter()
        fail_open = False
        if not self.trail.healthy:
            if not self.trail.fail_open:
                self._record(call, started, outcome="error", error_code=UNAVAILABLE)
                raise ToolFailure(UNAVAILABLE, "the audit trail cannot write; calls are refused until it recovers")
            fail_open = True
            self.trail.note_fail_open()
        try:
            result = await call_next(call)
        except asyncio.CancelledError:
            self._record(call, started, outcome=CLIENT_DISCONNECTED, fail_open=fail_open)
            raise
        except BaseException as error:
            self._record(
                call, started, outcome="error", error_code=f"internal:{type(error).__name__}", fail_open=fail_open
            )
            raise
        code = error_code_of(result)
        outcome = "ok" if code is None else OUTCOME_BY_CODE.get(code, "error")
        self._record(call, started, outcome=outcome, error_code=code, fail_open=fail_open)
        return result

    def _record(
        self,
        call: CallContext,
        started: float,
        *,
        outcome: str,
        error_code: str | None = None,
        fail_open: bool = False,
    ) -> None:
        principal = call.principal
        # A call refused before the policy decided (bad input, sink down) was not allowed either.
        decision = call.decision or "deny"
        record: dict[str, Any] = {
            "event": "tool_call",
            "user": principal.user,
            "auth": principal.auth,
            "groups": list(principal.groups),
            "agent": principal.agent,
            "declared_client": principal.declared_client,
            "tool": call.tool,
            "action": call.action,
            "paths": list(call.paths),
            "decision": decision,
            "outcome": outcome,
            "error_code": error_code,
            "duration_ms": round((time.perf_counter() - started) * 1000, 3),
            "request_id": call.request_id,
            "mcp_session_id": call.mcp_session_id,
            "remote_ip": call.remote_ip,
            "args_digest": self.trail.digest(call.arguments) if self.trail.started else None,
        }
        if fail_open:
            record["fail_open"] = True
        record.update(call.audit_notes)
        self.trail.record(record)
