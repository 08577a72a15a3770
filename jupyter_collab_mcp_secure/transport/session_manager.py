"""The SDK's StreamableHTTP session manager: one event store per session, session ends reported, kept running."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from mcp.server.auth.middleware.bearer_auth import AuthorizationContext
from mcp.server.streamable_http import StreamableHTTPServerTransport
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from traitlets import Float, HasTraits, Int

from .event_store import EventStoreLimits, SessionEventStore

SessionEnded = Callable[[str], Awaitable[None]]


class ScopedSessionManager(StreamableHTTPSessionManager):
    """Gives each session its own event store, owned by the principal that opened it.

    The SDK creates every session's transport in `_admit_session` with the one
    store passed to the manager (private API, mcp 2.3: pinned, and covered by
    tests/test_resumability.py). Here each admitted transport gets a fresh
    `SessionEventStore`, so a `Last-Event-ID` from another session (or
    another principal) replays nothing. `_discard_session` is where every
    session ends (client DELETE, idle timeout, crash, refused opening
    request); `on_session_end` hears of it once per session.
    """

    def __init__(
        self,
        app: Any,
        *,
        event_store_limits: EventStoreLimits | None = None,
        on_session_end: SessionEnded | None = None,
        max_sessions_per_principal: int | None = None,
        **options: Any,
    ) -> None:
        if options.get("event_store") is not None:
            raise ValueError("ScopedSessionManager makes its own per-session event stores")
        super().__init__(app, **options)
        self.event_store_limits = event_store_limits
        self.max_sessions_per_principal = max_sessions_per_principal
        self.on_session_end = on_session_end
        self.session_stores: dict[str, SessionEventStore] = {}
        self.log = logging.getLogger(__name__)

    def _admit_session(self, requestor: AuthorizationContext | None) -> StreamableHTTPServerTransport | None:
        # One principal must not hold the server's whole session budget (and its event memory).
        if self.max_sessions_per_principal is not None and requestor is not None:
            held = sum(owner == requestor for owner in self._session_owners.values())
            if held >= self.max_sessions_per_principal:
                return None  # the SDK answers 503 "Too many open sessions"
        transport = super()._admit_session(requestor)
        if transport is None or self.event_store_limits is None:
            return transport
        session_id = transport.mcp_session_id
        assert session_id is not None
        store = SessionEventStore(self.event_store_limits, owner=requestor)
        # The transport reads its store at request time; nothing has used it yet.
        transport._event_store = store
        self.session_stores[session_id] = store
        return transport

    async def _discard_session(self, session_id: str, transport: StreamableHTTPServerTransport) -> None:
        known = session_id in self._server_instances
        self.session_stores.pop(session_id, None)
        await super()._discard_session(session_id, transport)
        if known and self.on_session_end is not None:
            with anyio.CancelScope(shield=True):
                try:
                    await self.on_session_end(session_id)
                except Exception:
                    self.log.exception("session end handler failed for an MCP session")


class SessionConfig(HasTraits):
    """Resumability bounds for MCP sessions of the initialize-handshake era (CollabMCP inherits these)."""

    max_sessions_per_principal = Int(
        16,
        help=(
            "Most MCP sessions (initialize-handshake era) one principal may hold open at once; "
            "another one is refused with 503 until one ends."
        ),
    ).tag(config=True)
    event_store_max_events = Int(
        1000,
        help=(
            "Most SSE events kept per MCP session for resumption with Last-Event-ID; 0 disables "
            "resumability. Each session has its own store: events never replay into another session."
        ),
    ).tag(config=True)
    event_store_max_bytes = Int(
        8 * 1024 * 1024,
        help="Most bytes of SSE events kept per MCP session for resumption; the oldest go first.",
    ).tag(config=True)
    event_store_max_age = Float(
        300,
        help="Seconds an SSE event is kept for resumption after it was sent.",
    ).tag(config=True)

    def event_store_limits(self) -> EventStoreLimits | None:
        if self.event_store_max_events <= 0:
            return None
        return EventStoreLimits(
            max_events=self.event_store_max_events,
            max_bytes=self.event_store_max_bytes,
            max_age=self.event_store_max_age,
        )


class ManagerRunner:
    """Owns the manager's `run()` context in one task, as anyio's task group requires.

    Until the context is entered the endpoint answers 503; `stop()` leaves it in
    the same task, which cancels every open session cleanly.
    """

    def __init__(self, manager: StreamableHTTPSessionManager, log: logging.Logger) -> None:
        self.manager = manager
        self.log = log
        self._ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        return self._ready.is_set() and not self._stop.is_set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="collab-mcp-session-manager")

    async def _run(self) -> None:
        async with self.manager.run():
            self._ready.set()
            await self._stop.wait()

    async def wait_ready(self) -> None:
        await self._ready.wait()

    async def stop(self) -> None:
        if self._task is None:
            return
        self._stop.set()
        try:
            await asyncio.wait_for(self._task, timeout=10)
        except Exception:
            self.log.exception("MCP session manager did not stop cleanly")
        self._task = None
