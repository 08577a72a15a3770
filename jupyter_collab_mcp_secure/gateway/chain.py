"""The gateway chain: small stages composed in one visible list, run for every tools/call.

A stage is `async (call, call_next) -> CallToolResult`. It may refuse by raising
`ToolFailure` (or returning an error result) instead of calling `call_next`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from mcp_types import CallToolResult

from .context import CallContext
from .errors import ToolFailure

CallNext = Callable[[CallContext], Awaitable[CallToolResult]]


class Stage(Protocol):
    async def __call__(self, call: CallContext, call_next: CallNext) -> CallToolResult: ...


class Chain:
    def __init__(self, stages: Sequence[Stage], endpoint: CallNext) -> None:
        self.stages = list(stages)
        self._entry = endpoint
        for stage in reversed(self.stages):
            self._entry = _link(stage, self._entry)

    async def __call__(self, call: CallContext) -> CallToolResult:
        return await self._entry(call)


def _link(stage: Stage, call_next: CallNext) -> CallNext:
    async def run(call: CallContext) -> CallToolResult:
        try:
            return await stage(call, call_next)
        except ToolFailure as failure:
            return failure.to_result()

    return run
