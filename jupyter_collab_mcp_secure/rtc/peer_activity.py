"""The activity feed's view of collaboration: what agents did through MCP, and people joining and leaving rooms."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from jupyter_server_ydoc.handlers import FORK_ROOMS
from jupyter_server_ydoc.utils import JUPYTER_COLLABORATION_AWARENESS_EVENTS_URI

from ..room_ids import file_id_of
from .activity import SOURCE_COLLABORATION, SOURCE_MCP, ActivityEntry, ActivityFeed
from .adapter import RTCAdapter
from .agent_peer import Agent

# What an MCP tool that touched a document did, for the activity feed.
TOOL_ACTIVITY = {
    "update_notebook_cell": "edit",
    "insert_notebook_cell": "edit",
    "delete_notebook_cell": "edit",
    "execute_notebook_cell": "execute",
    "update_document": "edit",
    "insert_text": "edit",
    "delete_text": "edit",
    "restore_document_version": "edit",
    "merge_document_fork": "edit",
}


class ActivityBridge:
    """Feeds the activity feed; `on_join(room_id)` runs when a person joins a room over the websocket."""

    def __init__(self, rtc: RTCAdapter, feed: ActivityFeed, on_join: Callable[[str], None]) -> None:
        self.rtc = rtc
        self.feed = feed
        self.on_join = on_join
        self._event_logger = getattr(rtc.serverapp, "event_logger", None)
        if self._event_logger is not None:
            self._event_logger.add_listener(
                schema_id=JUPYTER_COLLABORATION_AWARENESS_EVENTS_URI, listener=self._on_collaboration_event
            )

    def close(self) -> None:
        if self._event_logger is not None:
            with contextlib.suppress(Exception):
                self._event_logger.remove_listener(
                    schema_id=JUPYTER_COLLABORATION_AWARENESS_EVENTS_URI, listener=self._on_collaboration_event
                )

    def agent_did(
        self,
        agent: Agent,
        activity_type: str,
        path: str | None,
        room_id: str | None,
        description: str,
        source: str = SOURCE_MCP,
        metadata: dict[str, Any] | None = None,
    ) -> ActivityEntry:
        return self.feed.add(
            ActivityEntry(
                activity_type=activity_type,
                user_id=agent.identity.username,
                display_name=agent.identity.label,
                is_agent=True,
                source=source,
                document_path=path,
                session_id=room_id,
                description=description,
                metadata=metadata,
            )
        )

    async def _on_collaboration_event(self, logger: Any, schema_id: str, data: dict[str, Any]) -> None:
        """jupyter-collaboration's join/leave of websocket collaborators: feed entries, and re-broadcast on join."""
        room_id = str(data.get("roomid") or "")
        username = str(data.get("username") or "")
        action = str(data.get("action") or "")
        path = self._path_of_room(room_id)
        self.feed.add(
            ActivityEntry(
                activity_type=action,
                user_id=username,
                display_name=username,
                is_agent=False,
                source=SOURCE_COLLABORATION,
                document_path=path,
                session_id=room_id or None,
                description=f"{'joined' if action == 'join' else 'left'} {path or room_id}",
            )
        )
        if action == "join":
            self.on_join(room_id)

    def _path_of_room(self, room_id: str) -> str | None:
        fork = FORK_ROOMS.get(room_id)
        if fork is not None:
            # Activity in a fork is about the document it was made from.
            room_id = fork["root_roomid"]
        file_id = file_id_of(room_id)
        if file_id is None:
            return None
        try:
            return self.rtc.file_ids.get_path(file_id)
        except Exception:  # noqa: BLE001 - the feed entry keeps the room id when the path is gone
            return None
