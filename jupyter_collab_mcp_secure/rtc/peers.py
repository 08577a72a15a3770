"""Agents as their own collaborator peers: one awareness client per agent, per MCP session, per room.

While an agent works on a document it is a peer in that room (so JupyterLab
draws its cursor and lists it on the document) and in JupyterLab's global
awareness room (the Collaborators panel, with its presence and latest
broadcast). Its state lives only in those awareness states. It leaves when
its MCP session ends, when it leaves the session itself, or after
`idle_timeout` seconds without a call that touched a document.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jupyter_server_ydoc.handlers import FORK_ROOMS
from jupyter_server_ydoc.utils import JUPYTER_COLLABORATION_AWARENESS_EVENTS_URI
from pycrdt import Awareness, Doc, Text, create_awareness_message

from ..gateway.context import current_call
from ..gateway.errors import INVALID_ARGUMENT, NOT_FOUND, ToolFailure
from ..identity.principal import Principal
from .activity import (
    SOURCE_BROADCAST,
    SOURCE_COLLABORATION,
    SOURCE_MCP,
    ActivityEntry,
    ActivityFeed,
    utc_now,
)
from .adapter import FILE, GLOBAL_AWARENESS_ROOM, NOTEBOOK, OpenDocument, RTCAdapter
from .agent_identity import AgentIdentity
from .cursors import relative_position
from .peer_channel import PeerChannel

PRESENCE_STATUSES = ("online", "away", "busy", "offline")

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

# JupyterLab's `current` widget prefix per document kind (the Collaborators panel opens it).
_WIDGET_PREFIX = {NOTEBOOK: "notebook", FILE: "editor"}

# Remote awareness states expire after 30 s upstream (pycrdt and y-protocols): renew well before.
RENEW_INTERVAL = 10.0


class RoomPeer:
    """The agent's awareness client in one room, served by the room like a websocket."""

    def __init__(self, agent: Agent, room_id: str, path: str | None, kind: str | None) -> None:
        self.agent = agent
        self.room_id = room_id
        self.path = path
        self.kind = kind
        self.awareness = Awareness(Doc())
        self.channel = PeerChannel(room_id, self.client_id, self.publish)
        self.extra: dict[str, Any] = {}
        self.task: asyncio.Task[None] | None = None

    @property
    def client_id(self) -> int:
        return self.awareness.client_id

    @property
    def active(self) -> bool:
        return not self.channel.closed

    def publish(self) -> None:
        """Send the current state to the room (also renews it before peers time it out)."""
        if not self.active:
            return
        self.awareness.set_local_state({**self.agent.state(), **self.extra})
        self._send()

    def leave(self) -> None:
        if not self.active:
            return
        self.awareness.set_local_state(None)
        self._send()
        self.channel.close()

    def _send(self) -> None:
        update = self.awareness.encode_awareness_update([self.client_id])
        self.channel.say(create_awareness_message(update))


@dataclass
class Agent:
    """One agent (a principal through one MCP client) working through one MCP session."""

    identity: AgentIdentity
    session_id: str | None
    presence: dict[str, Any] = field(default_factory=lambda: {"status": "online", "message": None})
    broadcast: dict[str, Any] | None = None
    rooms: dict[str, RoomPeer] = field(default_factory=dict)
    global_peer: RoomPeer | None = None
    current: str | None = None
    last_used: float = field(default_factory=time.monotonic)
    last_activity: str = field(default_factory=utc_now)

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "user": self.identity.user_field(),
            "agent": {
                "for": self.identity.user,
                "verified": self.identity.verified_agent,
            },
            "presence": {**self.presence, "last_activity": self.last_activity},
        }
        if self.broadcast is not None:
            state["activity"] = self.broadcast
        return state

    def peers(self) -> list[RoomPeer]:
        peers = list(self.rooms.values())
        if self.global_peer is not None:
            peers.append(self.global_peer)
        return peers

    def used(self) -> None:
        self.last_used = time.monotonic()
        self.last_activity = utc_now()


class AgentPeers:
    def __init__(
        self,
        rtc: RTCAdapter,
        log: logging.Logger,
        idle_timeout: float,
        *,
        activity: ActivityFeed | None = None,
        renew_interval: float = RENEW_INTERVAL,
    ) -> None:
        self.rtc = rtc
        self.log = log
        self.idle_timeout = idle_timeout
        self.renew_interval = renew_interval
        self.activity = activity or ActivityFeed()
        self._agents: dict[tuple[Any, str | None], Agent] = {}
        self._by_client: dict[int, RoomPeer] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self._global_lock = asyncio.Lock()
        self._server_start: asyncio.Task[None] | None = None
        self._event_logger = getattr(rtc.serverapp, "event_logger", None)
        if self._event_logger is not None:
            self._event_logger.add_listener(
                schema_id=JUPYTER_COLLABORATION_AWARENESS_EVENTS_URI, listener=self._on_collaboration_event
            )

    # --- what tools call -------------------------------------------------------------

    async def touch(
        self,
        principal: Principal,
        mcp_session_id: str | None,
        document: OpenDocument,
        *,
        cell_id: str | None = None,
        index: int | None = None,
    ) -> None:
        """Make the agent a visible peer in the document's room, its cursor at the cell (or text index) it last used."""
        agent = self._agent(principal, mcp_session_id)
        peer = self._room_peer(agent, document)
        cursor = self._cursor_at(document, cell_id, index)
        if cursor is not None:
            peer.extra["cursors"] = [{"anchor": cursor, "head": cursor, "primary": True, "empty": True}]
        call = current_call.get(None)
        tool = call.tool if call is not None else None
        activity_type = TOOL_ACTIVITY.get(tool or "", tool or "edit")
        where = f" (cell {cell_id})" if cell_id else ""
        self._record(
            agent, activity_type, document.path, document.room_id, f"{tool or activity_type} on {document.path}{where}"
        )
        await self._publish_everywhere(agent)

    async def join(self, principal: Principal, mcp_session_id: str | None, document: OpenDocument) -> RoomPeer:
        agent = self._agent(principal, mcp_session_id)
        peer = self._room_peer(agent, document)
        await self._publish_everywhere(agent)
        return peer

    async def set_cursor(
        self,
        principal: Principal,
        mcp_session_id: str | None,
        document: OpenDocument,
        *,
        head: dict[str, Any],
        anchor: dict[str, Any],
    ) -> RoomPeer:
        agent = self._agent(principal, mcp_session_id)
        peer = self._room_peer(agent, document)
        peer.extra["cursors"] = [{"anchor": anchor, "head": head, "primary": True, "empty": anchor == head}]
        await self._publish_everywhere(agent)
        return peer

    async def set_presence(
        self, principal: Principal, mcp_session_id: str | None, status: str, message: str | None
    ) -> Agent:
        if status not in PRESENCE_STATUSES:
            raise ToolFailure(INVALID_ARGUMENT, f"status must be one of {', '.join(PRESENCE_STATUSES)}")
        # Presence belongs to the principal's agent in every session it has open.
        agents = [agent for agent in self._agents.values() if agent.identity.key == AgentIdentity.of(principal).key]
        current = self._agent(principal, mcp_session_id)
        if current not in agents:
            agents.append(current)
        for agent in agents:
            agent.presence = {"status": status, "message": message, "since": utc_now()}
        current.used()
        for agent in agents:
            await self._publish_everywhere(agent)
        return current

    async def broadcast(
        self,
        principal: Principal,
        mcp_session_id: str | None,
        activity_type: str,
        description: str,
        metadata: dict[str, Any] | None,
        document: OpenDocument | None,
    ) -> ActivityEntry:
        agent = self._agent(principal, mcp_session_id)
        if document is not None:
            self._room_peer(agent, document)
        entry = self.activity.add(
            ActivityEntry(
                activity_type=activity_type,
                user_id=agent.identity.username,
                display_name=agent.identity.label,
                is_agent=True,
                source=SOURCE_BROADCAST,
                document_path=document.path if document else None,
                session_id=document.room_id if document else None,
                description=description,
                metadata=metadata,
            )
        )
        agent.broadcast = {
            "type": activity_type,
            "description": description,
            "document_path": entry.document_path,
            "time": entry.time,
        }
        await self._publish_everywhere(agent)
        return entry

    def leave(self, principal: Principal, room_id: str) -> list[RoomPeer]:
        """The principal's agents leave one room at once; other principals' agents are untouched."""
        key = AgentIdentity.of(principal).key
        left = []
        for agent in list(self._agents.values()):
            if agent.identity.key != key:
                continue
            peer = agent.rooms.pop(room_id, None)
            if peer is None:
                continue
            self._depart(peer, "leave")
            left.append(peer)
            agent.used()
            if agent.global_peer is not None:
                self._update_global_fields(agent)
                agent.global_peer.publish()
        return left

    async def wait_visible(self, peer: RoomPeer, room: Any, timeout: float = 5.0) -> bool:
        """Until the room holds the peer's state (every collaborator has been sent it)."""
        return await _wait_for_awareness(room, lambda: peer.client_id in room.awareness.states, timeout)

    async def wait_gone(self, peers: list[RoomPeer], room: Any, timeout: float = 5.0) -> bool:
        """Until the room has dropped the peers' states (every collaborator has been told)."""
        ids = {peer.client_id for peer in peers}
        return await _wait_for_awareness(room, lambda: not ids & room.awareness.states.keys(), timeout)

    async def end_session(self, mcp_session_id: str) -> None:
        """The MCP session ended: its agents leave every room at once."""
        for key, agent in list(self._agents.items()):
            if agent.session_id == mcp_session_id:
                self._retire(key, agent, "session ended")

    async def close(self) -> None:
        """Server shutdown: every agent peer leaves."""
        if self._event_logger is not None:
            with contextlib.suppress(Exception):
                self._event_logger.remove_listener(
                    schema_id=JUPYTER_COLLABORATION_AWARENESS_EVENTS_URI, listener=self._on_collaboration_event
                )
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        tasks = [peer.task for agent in self._agents.values() for peer in agent.peers() if peer.task is not None]
        for key, agent in list(self._agents.items()):
            self._retire(key, agent, "server stopping")
        if tasks:
            await asyncio.wait(tasks, timeout=5)

    # --- what readers ask --------------------------------------------------------------

    def peer_of_client(self, client_id: int) -> RoomPeer | None:
        """Our own agent peer behind an awareness client id (verified identity), if any."""
        return self._by_client.get(client_id)

    # --- internals ---------------------------------------------------------------------

    def _agent(self, principal: Principal, mcp_session_id: str | None) -> Agent:
        identity = AgentIdentity.of(principal)
        key = (identity.key, mcp_session_id)
        agent = self._agents.get(key)
        if agent is None:
            agent = self._agents[key] = Agent(identity=identity, session_id=mcp_session_id)
            # Presence is the principal's: a new session of the same agent shows the same status.
            for other in self._agents.values():
                if other is not agent and other.identity.key == identity.key:
                    agent.presence = dict(other.presence)
                    break
        agent.used()
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep(), name="collab-mcp-agent-peers")
        return agent

    def _room_peer(self, agent: Agent, document: OpenDocument) -> RoomPeer:
        peer = agent.rooms.get(document.room_id)
        if peer is not None and peer.active:
            return peer
        peer = RoomPeer(agent, document.room_id, document.path, document.kind)
        agent.rooms[document.room_id] = peer
        agent.current = f"{_WIDGET_PREFIX[document.kind]}:{document.path}"
        self._by_client[peer.client_id] = peer
        peer.task = asyncio.get_running_loop().create_task(self._serve_document_peer(peer))
        self._record(agent, "join", document.path, document.room_id, f"joined {document.path}")
        return peer

    async def _serve_document_peer(self, peer: RoomPeer) -> None:
        assert peer.path is not None and peer.kind is not None
        try:
            # The lease keeps the room open while the agent is in it; leaving releases it.
            async with self.rtc.open(peer.path, peer.kind):
                await self.rtc.websocket_server.serve(peer.channel)
        except Exception:
            self.log.warning("agent peer in room %s stopped", peer.room_id, exc_info=True)
        finally:
            self._forget(peer)

    async def _serve_global_peer(self, peer: RoomPeer) -> None:
        try:
            await self.rtc.websocket_server.serve(peer.channel)
        except Exception:
            self.log.warning("agent peer in the global awareness room stopped", exc_info=True)
        finally:
            self._forget(peer)

    def _forget(self, peer: RoomPeer) -> None:
        """The room stopped serving the peer (it left, or the room went away under it)."""
        peer.channel.close()
        if self._by_client.get(peer.client_id) is peer:
            del self._by_client[peer.client_id]
        agent = peer.agent
        if agent.rooms.get(peer.room_id) is peer:
            del agent.rooms[peer.room_id]
            if agent.global_peer is not None:
                self._update_global_fields(agent)
                agent.global_peer.publish()
        if agent.global_peer is peer:
            agent.global_peer = None

    async def _ensure_global_peer(self, agent: Agent) -> RoomPeer | None:
        if agent.global_peer is not None and agent.global_peer.active:
            return agent.global_peer
        room = await self._global_room()
        if room is None:
            return None
        peer = RoomPeer(agent, GLOBAL_AWARENESS_ROOM, None, None)
        agent.global_peer = peer
        self._by_client[peer.client_id] = peer
        peer.task = asyncio.get_running_loop().create_task(self._serve_global_peer(peer))
        return peer

    async def _global_room(self) -> Any:
        """JupyterLab's global awareness room, created as JupyterLab's handler would if no tab opened it yet."""
        from jupyter_server_ydoc.rooms import TransientRoom

        server = self.rtc.websocket_server
        async with self._global_lock:
            if not server.started.is_set():
                self._server_start = asyncio.get_running_loop().create_task(server.start())
                await server.started.wait()
            room = server.rooms.get(GLOBAL_AWARENESS_ROOM)
            if room is None:
                room = TransientRoom(GLOBAL_AWARENESS_ROOM, log=self.log, exception_handler=_log_room_exception)
                await server.start_room(room)
                server.add_room(GLOBAL_AWARENESS_ROOM, room)
            return room

    def _update_global_fields(self, agent: Agent) -> None:
        if agent.global_peer is None:
            return
        documents = sorted({peer.path for peer in agent.rooms.values() if peer.path})
        current = agent.current if agent.current and agent.current.split(":", 1)[1] in documents else None
        agent.global_peer.extra = {"current": current, "documents": documents}

    async def _publish_everywhere(self, agent: Agent) -> None:
        await self._ensure_global_peer(agent)
        self._update_global_fields(agent)
        for peer in agent.peers():
            peer.publish()

    def _cursor_at(self, document: OpenDocument, cell_id: str | None, index: int | None) -> dict[str, Any] | None:
        try:
            ytext = source_text(document, cell_id)
        except ToolFailure:
            # The cell is gone (e.g. the agent just deleted it): no cursor, never a failed edit.
            return None
        if ytext is None:
            return None
        length = len(str(ytext))
        offset = length if index is None else max(0, min(index, length))
        return relative_position(ytext, offset)

    def _record(
        self, agent: Agent, activity_type: str, path: str | None, room_id: str | None, description: str
    ) -> None:
        self.activity.add(
            ActivityEntry(
                activity_type=activity_type,
                user_id=agent.identity.username,
                display_name=agent.identity.label,
                is_agent=True,
                source=SOURCE_MCP,
                document_path=path,
                session_id=room_id,
                description=description,
            )
        )

    def _depart(self, peer: RoomPeer, reason: str) -> None:
        was_active = peer.active
        peer.leave()
        if was_active and peer.path is not None:
            self._record(peer.agent, "leave", peer.path, peer.room_id, f"left {peer.path} ({reason})")

    def _retire(self, key: tuple[Any, str | None], agent: Agent, reason: str) -> None:
        for peer in list(agent.rooms.values()):
            self._depart(peer, reason)
        agent.rooms.clear()
        if agent.global_peer is not None:
            agent.global_peer.leave()
        self._agents.pop(key, None)

    async def _sweep(self) -> None:
        """Renew every agent's awareness before peers expire it; retire agents idle too long."""
        tick = max(0.05, min(self.renew_interval, self.idle_timeout / 4))
        last_renewal = time.monotonic()
        while self._agents:
            await asyncio.sleep(tick)
            now = time.monotonic()
            for key, agent in list(self._agents.items()):
                if now - agent.last_used >= self.idle_timeout:
                    self._retire(key, agent, "idle")
            if now - last_renewal >= self.renew_interval:
                last_renewal = now
                for agent in self._agents.values():
                    for peer in agent.peers():
                        peer.publish()

    async def _on_collaboration_event(self, logger: Any, schema_id: str, data: dict[str, Any]) -> None:
        """jupyter-collaboration's join/leave of websocket collaborators: feed entries, and re-broadcast on join."""
        room_id = str(data.get("roomid") or "")
        username = str(data.get("username") or "")
        action = str(data.get("action") or "")
        path = self._path_of_room(room_id)
        self.activity.add(
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
            # The room does not send existing awareness to a newcomer: late joiners see agents at once.
            for peer in list(self._by_client.values()):
                if peer.room_id == room_id:
                    peer.publish()

    def _path_of_room(self, room_id: str) -> str | None:
        fork = FORK_ROOMS.get(room_id)
        if fork is not None:
            # Activity in a fork is about the document it was made from.
            room_id = fork["root_roomid"]
        parts = room_id.split(":", 2)
        if len(parts) != 3:
            return None
        try:
            return self.rtc.file_ids.get_path(parts[2])
        except Exception:  # noqa: BLE001 - the feed entry keeps the room id when the path is gone
            return None


def source_text(document: OpenDocument, cell_id: str | None) -> Text | None:
    """The shared text a cursor lives in: a notebook cell's source, or a text document's source."""
    if document.kind == NOTEBOOK:
        if cell_id is None:
            return None
        for ycell in document.doc.ycells:
            if ycell.get("id") == cell_id:
                return ycell["source"]
        raise ToolFailure(NOT_FOUND, f"no cell with id '{cell_id}' in {document.path}")
    return document.doc.ydoc.get("source", type=Text)


async def _wait_for_awareness(room: Any, condition: Callable[[], bool], timeout: float) -> bool:
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
