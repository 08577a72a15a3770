"""The RTC adapter: live shared documents from jupyter_server_ydoc rooms, leased while in use.

Rooms are cleaned upstream only when a websocket closes, so a room opened here
with no browser would live forever, and a cleanup scheduled when the last
browser left could stop a room under a running call. A lease cancels pending
cleanup; when the last lease ends on a room nobody is connected to, the
adapter cleans it itself after `idle_cleanup_delay` (so consecutive calls reuse
the warm room), waiting for pending saves first.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from jupyter_server.utils import ensure_async

from ..gateway.errors import INVALID_ARGUMENT, NOT_FOUND, UNAVAILABLE, ToolFailure

# NOTEBOOK and FILE are re-exported: rtc modules and tools name the kinds through the adapter.
from ..room_ids import FILE, NOTEBOOK, document_of, document_room, file_id_of
from ..upstream import room_loaded, room_lock, room_saving, save_room_now


@dataclass
class OpenDocument:
    path: str
    kind: str
    room_id: str
    file_id: str
    room: Any
    doc: Any  # jupyter_ydoc YNotebook / YUnicode of the room: edits here are live


def version_of(ydoc: Any) -> str:
    """Changes with every update any collaborator makes to the document."""
    return hashlib.blake2b(ydoc.get_state(), digest_size=8).hexdigest()


def cell_version(cell: dict[str, Any]) -> str:
    """Changes when what an agent edits in a cell (its type or source) changes."""
    token = f"{cell.get('cell_type')}\x00{cell.get('source', '')}".encode()
    return hashlib.blake2b(token, digest_size=8).hexdigest()


class RTCAdapter:
    def __init__(self, serverapp: Any, log: logging.Logger, idle_cleanup_delay: float) -> None:
        self.serverapp = serverapp
        self.log = log
        self.idle_cleanup_delay = idle_cleanup_delay
        self._leases: dict[str, int] = {}
        self._cleanups: dict[str, asyncio.Task[None]] = {}

    @property
    def settings(self) -> dict[str, Any]:
        return self.serverapp.web_app.settings

    @property
    def ydoc_extension(self) -> Any:
        # Extensions load alphabetically; jupyter_server_ydoc may come after us, so look it up per call.
        ext = self.settings.get("jupyter_server_ydoc")
        if ext is None:
            raise ToolFailure(UNAVAILABLE, "real-time collaboration (jupyter-collaboration) is not enabled")
        return ext

    @property
    def file_ids(self) -> Any:
        return self.settings["file_id_manager"]

    @property
    def contents(self) -> Any:
        return self.serverapp.contents_manager

    @property
    def websocket_server(self) -> Any:
        return self.ydoc_extension.ywebsocket_server

    def collaboration_session_id(self) -> str:
        from jupyter_server_ydoc.utils import SERVER_SESSION

        return SERVER_SESSION

    async def require_file(self, path: str, kind: str) -> None:
        """Refuse what is not an existing document of that kind, before any room is made for it."""
        if kind == FILE and path.endswith(".ipynb"):
            raise ToolFailure(INVALID_ARGUMENT, f"'{path}' is a notebook: use the notebook tools")
        if kind == NOTEBOOK and not path.endswith(".ipynb"):
            raise ToolFailure(INVALID_ARGUMENT, f"'{path}' is not a notebook (.ipynb)")
        # Jupyter serves no hidden files unless ContentsManager.allow_hidden; neither does MCP.
        if not self.contents.allow_hidden and await ensure_async(self.contents.is_hidden(path)):
            raise ToolFailure(INVALID_ARGUMENT, f"'{path}' is hidden and this server does not serve hidden files")
        if not await ensure_async(self.contents.file_exists(path)):
            raise ToolFailure(NOT_FOUND, f"no {kind} at '{path}'")

    def room_id_for(self, path: str, kind: str) -> tuple[str, str]:
        file_id = self.file_ids.index(path)
        if file_id is None:
            raise ToolFailure(NOT_FOUND, f"'{path}' is not indexed by the file id service")
        return document_room(kind, file_id), file_id

    def live_room(self, room_id: str) -> Any | None:
        return self.websocket_server.rooms.get(room_id)

    def live_room_of(self, path: str, kind: str) -> Any | None:
        """The open room of a document, if any; unlike room_id_for, never indexes a new file id."""
        file_id = self.file_ids.get_id(path)
        return None if file_id is None else self.live_room(document_room(kind, file_id))

    async def path_of_room(self, room_id: str) -> str:
        """The document behind a collaboration session id (a room id)."""
        document = document_of(room_id)
        if document is None:
            raise ToolFailure(INVALID_ARGUMENT, f"'{room_id}' is not a collaboration session id")
        path = self.file_ids.get_path(document[1])
        if path is None:
            raise ToolFailure(NOT_FOUND, f"no document for session '{room_id}'")
        return path

    @contextlib.asynccontextmanager
    async def open(self, path: str, kind: str) -> AsyncIterator[OpenDocument]:
        """The live document at `path`; the room stays alive until the block ends."""
        await self.require_file(path, kind)
        room_id, file_id = self.room_id_for(path, kind)
        self._acquire(room_id)
        try:
            # By room id: the file id is already indexed, upstream would index the path again.
            doc = await self.ydoc_extension.get_document(room_id=room_id, copy=False, create=True)
            room = self.live_room(room_id)
            if doc is None or room is None:
                raise ToolFailure(UNAVAILABLE, f"could not open a collaboration room for '{path}'")
            self._cancel_upstream_cleaner(room)
            # A new room starts observing its document in a later task; an edit before that
            # would reach neither the YStore nor the connected peers.
            observed = getattr(room, "ydoc_observed", None)
            if observed is not None:
                await observed.wait()
            _deliver_promptly(room)
            await room_loaded(room)
            yield OpenDocument(path=path, kind=kind, room_id=room_id, file_id=file_id, room=room, doc=doc)
        finally:
            self._release(room_id)

    def _acquire(self, room_id: str) -> None:
        self._leases[room_id] = self._leases.get(room_id, 0) + 1
        pending = self._cleanups.pop(room_id, None)
        if pending is not None:
            pending.cancel()

    def _release(self, room_id: str) -> None:
        remaining = self._leases[room_id] - 1
        if remaining:
            self._leases[room_id] = remaining
            return
        del self._leases[room_id]
        self._cleanups[room_id] = asyncio.get_running_loop().create_task(self._clean_when_idle(room_id))

    @staticmethod
    def _cancel_upstream_cleaner(room: Any) -> None:
        cleaner = getattr(room, "cleaner", None)
        if cleaner is not None and not cleaner.done():
            cleaner.cancel()

    async def _clean_when_idle(self, room_id: str) -> None:
        try:
            await asyncio.sleep(self.idle_cleanup_delay)
            room = self.live_room(room_id)
            # Browsers and agent peers are websocket clients: their departure cleans the room upstream.
            if room is None or room.clients:
                return
            await self.close_room(room_id)
        except asyncio.CancelledError:
            pass
        finally:
            if self._cleanups.get(room_id) is asyncio.current_task():
                del self._cleanups[room_id]

    async def close_room(self, room_id: str) -> None:
        """Stop a room nobody uses, after its pending save, as upstream's cleanup does."""
        ext = self.ydoc_extension
        room = self.live_room(room_id)
        if room is None:
            return
        async with room_lock(ext, room_id):
            saving = room_saving(room)
            if saving is not None and not saving.done():
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await asyncio.wait_for(asyncio.shield(saving), timeout=10)
            await ext.ywebsocket_server.delete_room(room=room)
            file_id = file_id_of(room_id)
            loader = ext.file_loaders[file_id]
            if loader.number_of_subscriptions == 0:
                await ext.file_loaders.remove(file_id)
        self.log.debug("closed idle collaboration room %s", room_id)

    async def save_now(self, document: OpenDocument) -> None:
        """Write the live document to disk without waiting for the autosave debounce."""
        task = save_room_now(document.room)
        if task is not None:
            await task

    async def close(self) -> None:
        """At shutdown: close the rooms this adapter kept alive."""
        pending = list(self._cleanups.items())
        self._cleanups.clear()
        for room_id, task in pending:
            task.cancel()
            room = self.live_room(room_id)
            if room is not None and not room.clients:
                with contextlib.suppress(Exception):
                    await self.close_room(room_id)

    def collaboration_state(self, document: OpenDocument) -> dict[str, Any]:
        """Where a document is shared and who is in it, as the tools report it."""
        return {
            "room_id": document.room_id,
            "file_id": document.file_id,
            "collaboration_session_id": self.collaboration_session_id(),
            "connected": self.connected_users(document.room),
        }

    def presence_counts(self, room: Any | None) -> dict[str, int]:
        """How many are in a room, people and agents counted apart (listings report these)."""
        users = self.connected_users(room) if room is not None else []
        agents = sum(user["is_agent"] for user in users)
        return {"collaborators": len(users), "people": len(users) - agents, "agents": agents}

    def connected_users(self, room: Any) -> list[dict[str, Any]]:
        """Who is in a room now, from its awareness (the server's own state has no user)."""
        users = []
        for client_id, state in room.awareness.states.items():
            user = (state or {}).get("user")
            if isinstance(user, dict) and user.get("username"):
                users.append(
                    {
                        "client_id": client_id,
                        "username": user.get("username"),
                        "display_name": user.get("display_name") or user.get("name"),
                        "is_agent": bool(user.get("is_agent") or state.get("agent")),
                    }
                )
        return users


def _deliver_promptly(room: Any) -> None:
    """Have the room's websockets send each update at once.

    Upstream leaves Nagle's algorithm on: a small update written while the
    previous one is unacknowledged waits for the peer's delayed ACK (~40 ms
    here), so collaborators saw an edit long after the call had returned.
    """
    for peer in list(getattr(room, "clients", ())):
        set_nodelay = getattr(peer, "set_nodelay", None)
        if set_nodelay is not None:
            with contextlib.suppress(AssertionError, OSError):
                set_nodelay(True)
