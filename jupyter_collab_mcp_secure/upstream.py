"""The one seam to upstream's private APIs: every underscore name of another package this project relies on.

Nothing else in the package touches a private attribute of an upstream object (tests/test_upstream_seam.py
checks both that and, for each name below, that the installed versions still have it in the expected shape).
Each entry names the version it was verified on and why no public API serves; an upgrade that breaks one
fails that test, naming the function here to revisit.

Verified on: jupyter_server 2.21.1, jupyter-server-ydoc 3.0.4 (jupyter-collaboration 5.0.4),
pycrdt-websocket 0.16.5, pycrdt-store 0.1.5 (pycrdt.store), mcp 2.3.0, anyio 4.16.0, limits 5.8.0,
tornado 6.6.1, CPython 3.11.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any

from jupyter_server_ydoc.stores import SQLiteYStore
from limits.aio.storage import MemoryStorage
from mcp.server.auth.middleware.bearer_auth import AuthorizationContext
from mcp.server.streamable_http import StreamableHTTPServerTransport
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.types import Receive, Scope, Send

# --- jupyter-server-ydoc 3.0.4: DocumentRoom and YDocExtension --------------------------------------------


async def room_loaded(room: Any) -> None:
    """Wait until a room that loads its document progressively has it all (jupyter-server-ydoc 3.0.4).

    DocumentRoom keeps `_document_load_progressively` and the `_document_progressively_loaded` future
    private; nothing public says when the content has arrived.
    """
    if getattr(room, "_document_load_progressively", False):
        await room._document_progressively_loaded


def save_room_now(room: Any) -> asyncio.Task[Any] | None:
    """Start writing a room's document to disk now (jupyter-server-ydoc 3.0.4 `DocumentRoom._save_to_disc`).

    Upstream's manual save, used by its own save request over the websocket; it has no public method.
    None when a save is already under way.
    """
    return room._save_to_disc()


def room_saving(room: Any) -> asyncio.Task[Any] | None:
    """The room's save in progress, if any (jupyter-server-ydoc 3.0.4 `DocumentRoom._saving_document`).

    Upstream's own cleanup waits for it before deleting a room; no public accessor exists.
    """
    return getattr(room, "_saving_document", None)


def room_lock(ydoc_extension: Any, room_id: str) -> asyncio.Lock:
    """The lock upstream holds while it creates or deletes a room (jupyter-server-ydoc 3.0.4).

    `YDocExtension._room_locks` is handed to upstream's handlers only; closing a room without it could
    race a browser reopening the same room.
    """
    lock: asyncio.Lock = ydoc_extension._room_locks[room_id]
    return lock


def websocket_room_id(handler: Any) -> str:
    """The room a YDocWebSocketHandler serves, once its prepare() decoded it; "" before that.

    jupyter-server-ydoc 3.0.4 keeps it as `YDocWebSocketHandler._room_id`, with no public property.
    """
    room_id = getattr(handler, "_room_id", "")
    return room_id if isinstance(room_id, str) else ""


# --- pycrdt-websocket 0.16.5: YRoom -------------------------------------------------------------------------


def room_updates_pending(room: Any) -> int | None:
    """Updates a room received but has not yet handed to its YStore; None when the room has no such queue.

    pycrdt-websocket 0.16.5 queues them in the private memory stream `YRoom._update_send_stream`; its
    statistics are the only sign of the writes still to come.
    """
    stream = getattr(room, "_update_send_stream", None)
    return None if stream is None else stream.statistics().current_buffer_used


# --- pycrdt-store 0.1.5 (through jupyter-server-ydoc's SQLiteYStore) ---------------------------------------


class YStoreWriteHooks(SQLiteYStore):
    """Calls `write_locked()` when upstream's write() holds the store lock, before it takes its timestamp.

    pycrdt-store 0.1.5's SQLiteYStore.write() calls the private `_cleanup_if_needed()` first thing under its
    lock, and `get_metadata()` (public) last before the INSERT; the first is the only hook into that window.
    """

    def write_locked(self) -> None:
        """Override: runs once per write, under the store lock."""

    async def _cleanup_if_needed(self) -> bool:
        self.write_locked()
        return await super()._cleanup_if_needed()


# --- limits 5.8.0: MemoryStorage ----------------------------------------------------------------------------


class MemoryStorageHooks(MemoryStorage):
    """Routes limits' expiry scheduling through `schedule_expiry()`, which a subclass may throttle.

    limits 5.8.0 MemoryStorage starts its sweep from the name-mangled `__schedule_expiry` after every hit,
    with no option to change it (limits is pinned below 6).
    """

    async def schedule_expiry(self) -> None:
        """Override point; the default is upstream's scheduling."""
        await super()._MemoryStorage__schedule_expiry()  # type: ignore[misc]

    async def _MemoryStorage__schedule_expiry(self) -> None:
        await self.schedule_expiry()


# --- mcp 2.3.0: StreamableHTTPSessionManager, StreamableHTTPServerTransport, MCPServer ----------------------


class SessionManagerHooks(StreamableHTTPSessionManager):
    """Public names over the SDK's private session lifecycle, for a manager that scopes and caps sessions.

    mcp 2.3.0 offers no hook where a session is admitted, opened or discarded, nor a way to give each
    session its own event store; its manager does all of it in these private methods and attributes. A
    subclass overrides the public-named methods below and calls `super()` for upstream's behaviour.
    """

    async def stateful_request(self, scope: Scope, receive: Receive, send: Send) -> None:
        await super()._handle_stateful_request(scope, receive, send)

    def admit_session(self, requestor: AuthorizationContext | None) -> StreamableHTTPServerTransport | None:
        return super()._admit_session(requestor)

    async def serve_opening_request(
        self, http_transport: StreamableHTTPServerTransport, scope: Scope, receive: Receive, send: Send
    ) -> None:
        await super()._serve_opening_request(http_transport, scope, receive, send)

    async def discard_session(self, session_id: str, transport: StreamableHTTPServerTransport) -> None:
        await super()._discard_session(session_id, transport)

    async def _handle_stateful_request(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.stateful_request(scope, receive, send)

    def _admit_session(self, requestor: AuthorizationContext | None) -> StreamableHTTPServerTransport | None:
        return self.admit_session(requestor)

    async def _serve_opening_request(
        self, http_transport: StreamableHTTPServerTransport, scope: Scope, receive: Receive, send: Send
    ) -> None:
        await self.serve_opening_request(http_transport, scope, receive, send)

    async def _discard_session(self, session_id: str, transport: StreamableHTTPServerTransport) -> None:
        await self.discard_session(session_id, transport)

    def session_owners(self) -> dict[str, AuthorizationContext]:
        """Who opened each live session (the SDK's `_session_owners`)."""
        return self._session_owners

    def session_transport(self, session_id: str) -> StreamableHTTPServerTransport | None:
        """The transport of a live session (the SDK's `_server_instances`)."""
        return self._server_instances.get(session_id)

    def start_soon(self, function: Callable[..., Any], *args: Any) -> None:
        """Run in the manager's task group, which outlives requests (the SDK's `_task_group`)."""
        assert self._task_group is not None
        self._task_group.start_soon(function, *args)


def set_event_store(transport: StreamableHTTPServerTransport, store: Any) -> None:
    """Give one admitted session its own event store (mcp 2.3.0 reads `_event_store` at request time only)."""
    transport._event_store = store


def requests_in_flight(transport: StreamableHTTPServerTransport) -> int:
    """Requests a session is serving, an open GET stream included (mcp 2.3.0 `_requests_in_flight`).

    The SDK counts them for its idle timeout only; 1 (busy) if the counter is gone.
    """
    return getattr(transport, "_requests_in_flight", 1)


def lowlevel_server(mcp_server: Any) -> Any:
    """The low-level `Server` under an MCPServer, which a session manager runs (mcp 2.3.0 `_lowlevel_server`).

    MCPServer exposes its session manager only through its own Starlette app; building our manager needs
    the low-level server itself.
    """
    return mcp_server._lowlevel_server


# --- tornado 6.6.1 / jupyter_server 2.21.1: request handlers and the server app -----------------------------


def handler_finished(handler: Any) -> bool:
    """Whether a tornado RequestHandler already finished its response (tornado 6.6.1 `_finished`).

    tornado has no public accessor; finishing twice raises.
    """
    return bool(handler._finished)


def jupyter_user(handler: Any) -> Any:
    """The identity a Jupyter handler's prepare() resolved, else tornado's `current_user`.

    jupyter_server 2.21.1 stores it as `_jupyter_current_user`; its `current_user` fallback on a Jupyter
    handler whose prepare() did not resolve one raises instead of answering None.
    """
    if hasattr(handler, "_jupyter_current_user"):
        return handler._jupyter_current_user
    return handler.current_user


def stop_server(serverapp: Any, signum: int, frame: Any) -> None:
    """Stop the server as its SIGTERM handler does (jupyter_server 2.21.1 `ServerApp._signal_stop`).

    The only stop path that runs extensions' shutdown from a signal handler; JupyterHub uses it too.
    """
    serverapp._signal_stop(signum, frame)


# --- CPython 3.11 threading / anyio 4.16.0 worker threads ---------------------------------------------------


def before_threads_join(function: Callable[[], None]) -> None:
    """Run `function` at interpreter exit before non-daemon threads are joined (CPython 3.9+ private API).

    `atexit` runs after that join, too late; `threading._register_atexit` is what concurrent.futures uses.
    """
    threading._register_atexit(function)  # type: ignore[attr-defined]


def stop_idle_anyio_workers() -> None:
    """Tell anyio's idle worker threads to end (anyio 4.16.0 `_backends._asyncio.WorkerThread.stop`).

    They are not daemon threads and end only with the loop's root task, which tornado never ends; anyio
    has no public way to release them.
    """
    try:
        from anyio._backends._asyncio import WorkerThread
    except ImportError:
        return
    for thread in threading.enumerate():
        if isinstance(thread, WorkerThread) and thread.is_alive():
            with contextlib.suppress(queue.Full):
                thread.stop()
