"""What one tools/call carries through the chain."""

from __future__ import annotations

import contextvars
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..identity.principal import Principal
    from ..registry import ToolSpec
    from ..rtc.services import Services


@dataclass
class CallContext:
    principal: Principal
    tool: str
    arguments: dict[str, Any]
    request_id: str
    mcp_session_id: str | None = None
    remote_ip: str | None = None
    spec: ToolSpec | None = None
    action: str | None = None
    # Canonical paths, filled by the resolve stage before anything is decided.
    paths: tuple[str, ...] = ()
    # Set by the authorize stage: the decision that let the call through.
    decision: str | None = None
    # The read filter used by listing tools; the authorize stage installs it.
    can_read: Callable[[str], bool] = field(default=lambda path: False)
    # What tools work with (RTC adapter, peers, forks...), built once by the extension.
    services: Services | None = None
    # Set by the transport when the request itself is malformed (e.g. `arguments` not an object):
    # the audit stage records the call and refuses it.
    malformed: str | None = None
    # Facts later stages want in this call's audit record (e.g. a limit skipped by fail-open).
    audit_notes: dict[str, Any] = field(default_factory=dict)
    # Hands the call to the SDK's tool handler; set by the gateway middleware.
    invoke: Callable[[], Awaitable[Any]] | None = None
    started: float = field(default_factory=time.perf_counter)

    def readable(self, paths: Iterable[str]) -> list[str]:
        """Listing and cross-document results pass here: names the caller may not read vanish."""
        return [path for path in paths if self.can_read(path)]


current_call: contextvars.ContextVar[CallContext] = contextvars.ContextVar("collab_mcp_call")
