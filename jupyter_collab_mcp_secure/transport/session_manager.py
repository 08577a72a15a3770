"""The SDK's StreamableHTTP session manager: per-session event stores, an evicting per-principal cap."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from mcp.server.auth.middleware.bearer_auth import AuthorizationContext
from mcp.server.streamable_http import MCP_SESSION_ID_HEADER, StreamableHTTPServerTransport
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp_types import INTERNAL_ERROR, INVALID_REQUEST, ErrorData, JSONRPCError
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from traitlets import Float, HasTraits, Int

from ..config_ranges import not_negative, positive
from ..upstream import SessionManagerHooks, requests_in_flight, set_event_store
from .event_store import EventStoreLimits, SessionEventStore

SessionEnded = Callable[[str], Awaitable[None]]
_SESSION_HEADER = MCP_SESSION_ID_HEADER.lower().encode("latin-1")


class SessionsBusy(Exception):
    """Every session the principal holds is in use: nothing can be evicted to admit another."""

    def __init__(self, held: int, cap: int) -> None:
        super().__init__(f"{held} of {cap} sessions busy")
        self.held = held
        self.cap = cap


class ScopedSessionManager(SessionManagerHooks):
    """Gives each session its own event store, owned by the principal that opened it, and caps sessions per principal.

    The SDK creates every session's transport at admission with the one store
    passed to the manager (private API, reached through upstream.py; covered by
    tests/test_resumability.py and tests/test_sessions.py). Here each admitted
    transport gets a fresh `SessionEventStore`, so a `Last-Event-ID` from
    another session (or another principal) replays nothing.

    At the per-principal cap the principal's least recently used idle session
    (no request in flight, no open GET stream) is closed to admit the new one:
    one-shot clients never end their sessions, and their abandoned sessions must
    not lock their owner out. Only when every session is busy is the new one
    refused. `discard_session` is where every session ends (client DELETE,
    idle timeout, eviction, crash, refused opening request); `on_session_end`
    hears of it once per session.
    """

    def __init__(
        self,
        app: Any,
        *,
        event_store_limits: EventStoreLimits | None = None,
        on_session_end: SessionEnded | None = None,
        max_sessions_per_principal: int | None = None,
        log: logging.Logger | None = None,
        **options: Any,
    ) -> None:
        if options.get("event_store") is not None:
            raise ValueError("ScopedSessionManager makes its own per-session event stores")
        super().__init__(app, **options)
        self.event_store_limits = event_store_limits
        self.max_sessions_per_principal = max_sessions_per_principal
        self.on_session_end = on_session_end
        self.session_stores: dict[str, SessionEventStore] = {}
        self._last_used: dict[str, float] = {}
        # Admitted but not yet answered: its opening request is not counted by the transport yet.
        self._opening: set[str] = set()
        # Evicted, still being terminated: no longer counted, and answered as unknown.
        self._closing: set[str] = set()
        self.log = log or logging.getLogger(__name__)

    async def stateful_request(self, scope: Scope, receive: Receive, send: Send) -> None:
        session_id = next((v.decode("latin-1") for k, v in scope["headers"] if k == _SESSION_HEADER), None)
        if session_id in self._closing:
            await _error_response("Session not found", 404)(scope, receive, send)
            return
        if session_id in self._last_used:
            self._last_used[session_id] = time.monotonic()
        try:
            await super().stateful_request(scope, receive, send)
        except SessionsBusy as busy:
            self.log.warning(
                "Refusing a new MCP session: its principal holds %d sessions (the per-principal cap is %d), all busy",
                busy.held,
                busy.cap,
            )
            message = f"Too many open sessions: all {busy.held} of this principal's sessions (the cap) are in use"
            await _error_response(message, 503, INTERNAL_ERROR)(scope, receive, send)
        finally:
            if session_id in self._last_used:
                self._last_used[session_id] = time.monotonic()

    def admit_session(self, requestor: AuthorizationContext | None) -> StreamableHTTPServerTransport | None:
        if self.max_sessions_per_principal is not None and requestor is not None:
            self._make_room_for(requestor, self.max_sessions_per_principal)
        transport = super().admit_session(requestor)
        if transport is None:
            return None
        session_id = transport.mcp_session_id
        assert session_id is not None
        self._last_used[session_id] = time.monotonic()
        self._opening.add(session_id)
        if self.event_store_limits is not None:
            store = SessionEventStore(self.event_store_limits, owner=requestor)
            # The transport reads its store at request time; nothing has used it yet.
            set_event_store(transport, store)
            self.session_stores[session_id] = store
        return transport

    def _make_room_for(self, requestor: AuthorizationContext, cap: int) -> None:
        """Below the cap nothing happens; at it the LRU idle session goes, or SessionsBusy when none is idle."""
        held = [
            session_id
            for session_id, owner in self.session_owners().items()
            if owner == requestor and session_id not in self._closing
        ]
        if len(held) < cap:
            return
        idle = [session_id for session_id in held if self._is_idle(session_id)]
        if len(held) - len(idle) >= cap:
            raise SessionsBusy(len(held), cap)
        idle.sort(key=lambda session_id: self._last_used.get(session_id, 0.0))
        for victim in idle[: len(held) - cap + 1]:
            self._evict(victim)
        self.log.info(
            "Closed the least recently used idle MCP session of a principal at its cap (%d of %d held)",
            len(held),
            cap,
        )

    def _is_idle(self, session_id: str) -> bool:
        transport = self.session_transport(session_id)
        if transport is None or session_id in self._opening:
            return False
        # The transport counts requests in flight, an open GET stream included (mcp 2.3, idle timeout set).
        return requests_in_flight(transport) == 0

    def _evict(self, session_id: str) -> None:
        transport = self.session_transport(session_id)
        assert transport is not None
        self._closing.add(session_id)
        self.start_soon(self.discard_session, session_id, transport)

    async def serve_opening_request(
        self, http_transport: StreamableHTTPServerTransport, scope: Scope, receive: Receive, send: Send
    ) -> None:
        try:
            await super().serve_opening_request(http_transport, scope, receive, send)
        finally:
            self._opening.discard(http_transport.mcp_session_id or "")

    async def discard_session(self, session_id: str, transport: StreamableHTTPServerTransport) -> None:
        known = self.session_transport(session_id) is not None
        self.session_stores.pop(session_id, None)
        self._last_used.pop(session_id, None)
        try:
            await super().discard_session(session_id, transport)
        finally:
            self._closing.discard(session_id)
        if known and self.on_session_end is not None:
            with anyio.CancelScope(shield=True):
                try:
                    await self.on_session_end(session_id)
                except Exception:
                    self.log.exception("session end handler failed for an MCP session")


def _error_response(message: str, status_code: int, code: int = INVALID_REQUEST) -> Response:
    """The SDK's shape for transport-level refusals: a JSON-RPC error without an id."""
    body = JSONRPCError(jsonrpc="2.0", id=None, error=ErrorData(code=code, message=message))
    return Response(
        body.model_dump_json(by_alias=True, exclude_unset=True), status_code=status_code, media_type="application/json"
    )


class SessionConfig(HasTraits):
    """Resumability bounds for MCP sessions of the initialize-handshake era (CollabMCP inherits these)."""

    max_sessions_per_principal = Int(
        16,
        help=(
            "Most MCP sessions (initialize-handshake era) one principal may hold open at once. A new one "
            "closes the principal's least recently used idle session (no request in flight, no open GET "
            "stream); only when all of them are busy is it refused with 503."
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

    _session_positive = positive("max_sessions_per_principal", "event_store_max_bytes", "event_store_max_age")
    _session_not_negative = not_negative("event_store_max_events")

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
