"""Find every document a call touches, in canonical form, before any decision.

The canonical path replaces the raw one in the call's arguments, the very dict
the SDK validates and hands to the tool, so a tool's `path` parameter is the
path that was authorized: there is no raw value left to use by mistake.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from mcp_types import CallToolResult

from ...registry import BY_NAME, RESOLVED_ARGS
from ..chain import CallNext
from ..context import CallContext
from ..errors import INVALID_ARGUMENT, ToolFailure
from ..paths import canonicalize

# Maps an indirect argument's value (a session id, a fork id) to its document's path.
Resolver = Callable[[str], Awaitable[str]]


class ResolveStage:
    def __init__(self, root: Path, resolvers: Mapping[str, Resolver]) -> None:
        missing = set(RESOLVED_ARGS) - set(resolvers)
        if missing:
            raise ValueError(f"no resolver for {sorted(missing)}")
        self.root = root.resolve()
        self.resolvers = dict(resolvers)

    async def __call__(self, call: CallContext, call_next: CallNext) -> CallToolResult:
        spec = BY_NAME.get(call.tool)
        if spec is None:
            raise ToolFailure(INVALID_ARGUMENT, f"unknown tool '{call.tool}'")
        call.spec = spec
        call.action = spec.action
        paths: list[str] = []
        for name in spec.path_args:
            value = call.arguments.get(name)
            if value is not None:
                canonical = canonicalize(value, self.root, argument=name)
                call.arguments[name] = canonical
                paths.append(canonical)
        for name in RESOLVED_ARGS:
            value = call.arguments.get(name)
            if value is None:
                continue
            if not isinstance(value, str) or not value:
                raise ToolFailure(INVALID_ARGUMENT, f"'{name}' must be a non-empty string")
            paths.append(canonicalize(await self.resolvers[name](value), self.root, argument=name))
        call.paths = tuple(dict.fromkeys(paths))
        return await call_next(call)
