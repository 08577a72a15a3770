"""The audit stages: one record per call with its final outcome, and a start record before code runs.

`AuditStage` wraps everything after it. It refuses calls while the trail cannot
write (fail-closed), because a call that leaves no record is what a compliance
review must never find. Refusals go through the trail's refusal budget, so a
principal without grants cannot flood the trail.

`ExecutionStartStage` runs last, after authorization and rate limiting: a call
that runs code leaves `execution_started` before the code runs, so a server killed
mid-cell still shows that code ran (the end record carries the same `request_id`).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from mcp_types import CallToolResult

from ...registry import EXECUTE
from ..errors import FORBIDDEN, INVALID_ARGUMENT, RATE_LIMITED, UNAVAILABLE, ToolFailure, error_code_of

if TYPE_CHECKING:
    from ...audit.trail import AuditTrail
    from ..chain import CallNext
    from ..context import CallContext

OUTCOME_BY_CODE = {FORBIDDEN: "denied", RATE_LIMITED: "rate_limited"}
CLIENT_DISCONNECTED = "client_disconnected"
EXECUTION_STARTED = "execution_started"


class AuditStage:
    def __init__(self, trail: AuditTrail) -> None:
        self.trail = trail

    async def __call__(self, call: CallContext, call_next: CallNext) -> CallToolResult:
        started = time.perf_counter()
        fail_open = False
        if call.malformed is not None:
            self._record(call, started, outcome="error", error_code=INVALID_ARGUMENT)
            raise ToolFailure(INVALID_ARGUMENT, call.malformed)
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
        # A call refused before the policy decided (bad input, sink down) was not allowed either.
        decision = call.decision or "deny"
        record = {
            **call_fields(call, self.trail),
            "event": "tool_call",
            "decision": decision,
            "outcome": outcome,
            "error_code": error_code,
            "duration_ms": round((time.perf_counter() - started) * 1000, 3),
        }
        if fail_open:
            record["fail_open"] = True
        record.update(call.audit_notes)
        if decision != "allow" or outcome in ("denied", "rate_limited"):
            self.trail.record_refusal(record, key=call.principal.rate_key)
        else:
            self.trail.record(record)


class ExecutionStartStage:
    def __init__(self, trail: AuditTrail) -> None:
        self.trail = trail

    async def __call__(self, call: CallContext, call_next: CallNext) -> CallToolResult:
        if call.spec is not None and call.spec.action == EXECUTE:
            self.trail.record({**call_fields(call, self.trail), "event": EXECUTION_STARTED, "decision": call.decision})
        return await call_next(call)


def call_fields(call: CallContext, trail: AuditTrail) -> dict[str, Any]:
    """Who called what on which paths: the fields every record of a call carries.

    (Stages add their own facts through `call.audit_notes`, e.g. the policy rule that decided.)
    """
    principal = call.principal
    fields: dict[str, Any] = {
        "user": principal.user,
        "auth": principal.auth,
        "groups": list(principal.groups),
        # The policy's view of the caller, so a later policy can be replayed against the record.
        "subjects": list(principal.subjects),
        "agent": principal.agent,
        "declared_client": principal.declared_client,
        "tool": call.tool,
        "action": call.action,
        "paths": list(call.paths),
        "request_id": call.request_id,
        "mcp_session_id": call.mcp_session_id,
        "remote_ip": call.remote_ip,
        "args_digest": trail.digest(call.arguments) if trail.started else None,
    }
    return fields
