"""JupyterLab's global awareness room (the Collaborators panel), and waiting on a room's awareness."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from ..room_ids import GLOBAL_AWARENESS_ROOM
from .adapter import RTCAdapter


class GlobalRoom:
    def __init__(self, rtc: RTCAdapter, log: logging.Logger) -> None:
        self.rtc = rtc
        self.log = log
        self._lock = asyncio.Lock()
        self._server_start: asyncio.Task[None] | None = None

    async def get(self) -> Any:
        """The room, created as JupyterLab's handler would if no tab opened it yet."""
        from jupyter_server_ydoc.rooms import TransientRoom

        server = self.rtc.websocket_server
        async with self._lock:
            if not server.started.is_set():
                self._server_start = asyncio.get_running_loop().create_task(server.start())
                await server.started.wait()
            room = server.rooms.get(GLOBAL_AWARENESS_ROOM)
            if room is None:
                room = TransientRoom(GLOBAL_AWARENESS_ROOM, log=self.log, exception_handler=_log_room_exception)
                await server.start_room(room)
                server.add_room(GLOBAL_AWARENESS_ROOM, room)
            return room


async def wait_for_awareness(room: Any, condition: Callable[[], bool], timeout: float) -> bool:
    """Until `condition` holds for the room's awareness states, or `timeout` seconds: whether it holds."""
    if condition():
        return True
    reached = asyncio.Event()

    def check(topic: str, changes: Any) -> None:
        if condition():
            reached.set()

    subscription = room.awareness.observe(check)
    try:
        await asyncio.wait_for(reached.wait(), timeout)
        return True
    except asyncio.TimeoutError:
        return condition()
    finally:
        room.awareness.unobserve(subscription)


def _log_room_exception(exception: Exception, log: logging.Logger) -> bool:
    # Upstream's choice too: a room's task group must survive one bad message.
    log.error("global awareness room error", exc_info=exception)
    return True
