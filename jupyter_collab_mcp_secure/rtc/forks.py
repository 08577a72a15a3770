"""Forks of live documents: registered where jupyter-collaboration lists forks, merged CRDT-wise.

A fork is a copy of the root's shared document in a room of its own,
registered in `jupyter_server_ydoc.handlers.FORK_ROOMS` (so the fork REST API
and JupyterLab list it, and browsers can join its room). While it lives, the
root room is leased so it stays loaded. `synchronize` pulls root changes into
the fork with an observer owned here, removed when the fork ends (upstream's
is never removed). Merging applies what the fork has and the root lacks, so
concurrent edits on both sides survive. Forks live in memory only: the ones
never merged end after `ttl` seconds and at shutdown, their rooms stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from jupyter_ydoc import ydocs
from pycrdt import Doc
from pycrdt.websocket import YRoom

from ..gateway.errors import INVALID_ARGUMENT, NOT_FOUND, ToolFailure
from .adapter import OpenDocument

FORK_EVENTS_SCHEMA = "https://schema.jupyter.org/jupyter_collaboration/fork/v1"


@dataclass
class Fork:
    id: str
    root: OpenDocument
    document: OpenDocument  # the fork's own shared document and room
    title: str
    description: str
    synchronize: bool
    created_by: str
    created: float = field(default_factory=time.time)
    lease: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)
    subscription: Any = None
    expiry: asyncio.Task[None] | None = None

    @property
    def info(self) -> dict[str, Any]:
        """The fork's entry in jupyter-collaboration's fork registry."""
        return {
            "root_roomid": self.root.room_id,
            "synchronize": self.synchronize,
            "title": self.title,
            "description": self.description,
        }

    def describe(self) -> dict[str, Any]:
        return {
            "fork_id": self.id,
            "path": self.root.path,
            "kind": self.root.kind,
            "root_room_id": self.root.room_id,
            "fork_room_id": self.id,
            "title": self.title,
            "description": self.description,
            "synchronize": self.synchronize,
            "created_by": self.created_by,
        }


def _fork_rooms() -> dict[str, dict[str, Any]]:
    from jupyter_server_ydoc.handlers import FORK_ROOMS

    return FORK_ROOMS


class ForkRegistry:
    def __init__(self, rtc: Any, log: logging.Logger, ttl: float) -> None:
        self.rtc = rtc
        self.log = log
        self.ttl = ttl
        self._forks: dict[str, Fork] = {}

    async def create(
        self, path: str, kind: str, *, title: str, description: str, synchronize: bool, created_by: str
    ) -> Fork:
        fork_id = uuid.uuid4().hex
        lease = contextlib.AsyncExitStack()
        root = await lease.enter_async_context(self.rtc.open(path, kind))
        try:
            fork_doc = Doc()
            fork_doc.apply_update(root.doc.ydoc.get_update())
            room = YRoom(ydoc=fork_doc, log=self.log)
            websocket_server = self.rtc.websocket_server
            websocket_server.rooms[fork_id] = room
            await websocket_server.start_room(room)
        except BaseException:
            self.rtc.websocket_server.rooms.pop(fork_id, None)
            await lease.aclose()
            raise
        document = OpenDocument(
            path=path, kind=kind, room_id=fork_id, file_id=root.file_id, room=room, doc=ydocs[kind](fork_doc)
        )
        fork = Fork(fork_id, root, document, title, description, synchronize, created_by, lease=lease)
        if synchronize:
            fork.subscription = root.doc.ydoc.observe(lambda event: fork_doc.apply_update(event.update))
        _fork_rooms()[fork_id] = fork.info
        self._forks[fork_id] = fork
        fork.expiry = asyncio.get_running_loop().create_task(self._expire(fork_id))
        self._emit(created_by, fork, "create")
        return fork

    def get(self, fork_id: str) -> Fork:
        fork = self._forks.get(fork_id)
        if fork is None:
            raise ToolFailure(NOT_FOUND, f"no fork '{fork_id}'")
        if fork_id not in _fork_rooms() or self.rtc.live_room(fork_id) is not fork.document.room:
            # Deleted through jupyter-collaboration's fork REST API behind our back.
            asyncio.get_running_loop().create_task(self.end(fork_id, by="jupyter-collaboration"))
            raise ToolFailure(NOT_FOUND, f"fork '{fork_id}' was closed")
        return fork

    def forks_of(self, path: str) -> list[Fork]:
        return [fork for fork in self._forks.values() if fork.root.path == path]

    async def root_path_of(self, fork_id: str) -> str:
        """The current path of the document a fork was made from: forks are authorized on it.

        Resolved through the file id at call time, so a root document moved into a
        restricted folder is decided there, not where it was when the fork was made.
        """
        return await self.rtc.path_of_room(self.get(fork_id).root.room_id)

    def fork_of(self, fork_id: str, path: str, kind: str | None = None) -> Fork:
        """The fork, which must be a fork of the document at `path`."""
        fork = self.get(fork_id)
        if fork.root.path != path:
            raise ToolFailure(INVALID_ARGUMENT, f"fork '{fork_id}' is a fork of '{fork.root.path}', not of '{path}'")
        if kind is not None and fork.root.kind != kind:
            raise ToolFailure(INVALID_ARGUMENT, f"fork '{fork_id}' is a {fork.root.kind}, not a {kind}")
        return fork

    @contextlib.asynccontextmanager
    async def open_target(self, path: str, kind: str, fork_id: str | None = None) -> AsyncIterator[OpenDocument]:
        """The live document at `path`, or its fork `fork_id`: what document tools read and edit."""
        if fork_id is None:
            async with self.rtc.open(path, kind) as document:
                yield document
            return
        yield self.fork_of(fork_id, path, kind).document

    def merge_into(self, fork: Fork, root: OpenDocument) -> None:
        """Apply what the fork has and the live root lacks; edits made on both sides survive."""
        if fork.subscription is not None:
            # The root's reaction to the merge must not flow back into the fork.
            fork.root.doc.ydoc.unobserve(fork.subscription)
            fork.subscription = None
        fork_doc = fork.document.doc.ydoc
        root.doc.ydoc.apply_update(fork_doc.get_update(root.doc.ydoc.get_state()))

    async def end(self, fork_id: str, *, by: str) -> None:
        """Drop the fork: its registry entry, its observer, its room, and the lease on its root."""
        fork = self._forks.pop(fork_id, None)
        if fork is None:
            return
        if fork.expiry is not None and fork.expiry is not asyncio.current_task():
            fork.expiry.cancel()
        if fork.subscription is not None:
            fork.root.doc.ydoc.unobserve(fork.subscription)
            fork.subscription = None
        _fork_rooms().pop(fork_id, None)
        websocket_server = self.rtc.websocket_server
        if websocket_server.rooms.get(fork_id) is fork.document.room:
            with contextlib.suppress(Exception):
                await websocket_server.delete_room(name=fork_id)
        await fork.lease.aclose()
        self._emit(by, fork, "delete")

    async def _expire(self, fork_id: str) -> None:
        await asyncio.sleep(self.ttl)
        self.log.info("fork %s was not merged within %s s: dropping it", fork_id, self.ttl)
        await self.end(fork_id, by="fork-expiry")

    def _emit(self, username: str, fork: Fork, action: str) -> None:
        # The event JupyterLab's fork UI listens to, as upstream's fork handler emits it.
        with contextlib.suppress(Exception):
            self.rtc.serverapp.event_logger.emit(
                schema_id=FORK_EVENTS_SCHEMA,
                data={"username": username, "fork_roomid": fork.id, "fork_info": fork.info, "action": action},
            )

    async def close(self) -> None:
        """Shutdown: forks never merged are dropped, their rooms stopped."""
        for fork_id in list(self._forks):
            with contextlib.suppress(Exception):
                await self.end(fork_id, by="shutdown")
