"""Agents as their own collaborator peers: one awareness client per agent per room.

An agent is a principal through one MCP client: whether it calls through one
MCP session, many (one-shot clients open one per run) or none (the 2026-07-28
era), it is one collaborator. While it works on a document it is a peer in
that room (so JupyterLab draws its cursor and lists it on the document) and in
JupyterLab's global awareness room (the Collaborators panel, with its presence
and latest broadcast). Its state lives only in those awareness states. It
leaves a few seconds after its last MCP session ends, when it leaves the
session itself, or after `idle_timeout` seconds without a call that touched a
document (even while a session stays open: one-shot clients never end theirs).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from pycrdt import Text

from ..gateway.errors import INVALID_ARGUMENT, NOT_FOUND, ToolFailure
from ..identity.principal import Principal
from ..room_ids import GLOBAL_AWARENESS_ROOM, current_widget, path_of_current
from ..timestamps import utc_now
from .activity import SOURCE_BROADCAST, ActivityEntry, ActivityFeed
from .adapter import NOTEBOOK, OpenDocument, RTCAdapter
from .agent_identity import AgentIdentity
from .agent_peer import PRESENCE_STATUSES, Agent, RoomPeer
from .cursors import relative_position
from .global_room import GlobalRoom, wait_for_awareness
from .peer_activity import TOOL_ACTIVITY, ActivityBridge

# Remote awareness states expire after 30 s upstream (pycrdt and y-protocols): renew well before.
RENEW_INTERVAL = 10.0
# Seconds an agent stays after its last MCP session ended: one-shot clients run one after another.
LINGER = 5.0
# Agents one principal may show at once. clientInfo.name is the caller's choice (in the 2026-07-28 era, per
# request): each new name past this replaces the principal's least recently used agent.
MAX_AGENTS_PER_PRINCIPAL = 8


class AgentPeers:
    def __init__(
        self,
        rtc: RTCAdapter,
        log: logging.Logger,
        idle_timeout: float,
        *,
        activity: ActivityFeed | None = None,
        renew_interval: float = RENEW_INTERVAL,
        linger: float = LINGER,
        max_agents_per_principal: int = MAX_AGENTS_PER_PRINCIPAL,
    ) -> None:
        self.rtc = rtc
        self.log = log
        self.idle_timeout = idle_timeout
        self.renew_interval = renew_interval
        self.linger = linger
        self.max_agents_per_principal = max_agents_per_principal
        self.activity = activity or ActivityFeed()
        self._agents: dict[tuple[Any, ...], Agent] = {}
        self._by_client: dict[int, RoomPeer] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self._global_room = GlobalRoom(rtc, log)
        self._bridge = ActivityBridge(rtc, self.activity, self._republish_in)

    # --- what tools call -------------------------------------------------------------

    async def touch(
        self,
        principal: Principal,
        mcp_session_id: str | None,
        tool: str,
        document: OpenDocument,
        *,
        cell_id: str | None = None,
        index: int | None = None,
    ) -> None:
        """Make the agent a visible peer in the document's room, its cursor at the cell (or text index) it last used.

        `tool` is the MCP tool that touched the document, for the activity feed.
        """
        agent = self._agent(principal, mcp_session_id)
        peer = self._room_peer(agent, document)
        cursor = self._cursor_at(document, cell_id, index)
        if cursor is not None:
            peer.extra["cursors"] = [{"anchor": cursor, "head": cursor, "primary": True, "empty": True}]
        activity_type = TOOL_ACTIVITY.get(tool, tool or "edit")
        where = f" (cell {cell_id})" if cell_id else ""
        agent.doing = f"{tool or activity_type} on {document.path}{where}"
        self._bridge.agent_did(agent, activity_type, document.path, document.room_id, agent.doing)
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
        agent = self._agent(principal, mcp_session_id)
        agent.presence = {"status": status, "message": message, "since": utc_now()}
        await self._publish_everywhere(agent)
        return agent

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
        entry = self._bridge.agent_did(
            agent,
            activity_type,
            document.path if document else None,
            document.room_id if document else None,
            description,
            source=SOURCE_BROADCAST,
            metadata=metadata,
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
        """The caller's agent leaves one room at once; other agents are untouched."""
        agent = self._agents.get(AgentIdentity.of(principal).key)
        peer = agent.rooms.pop(room_id, None) if agent is not None else None
        if agent is None or peer is None:
            return []
        self._depart(peer, "leave")
        agent.last_used = time.monotonic()
        if agent.global_peer is not None:
            self._update_global_fields(agent)
            agent.global_peer.publish()
        return [peer]

    async def wait_visible(self, peer: RoomPeer, room: Any, timeout: float = 5.0) -> bool:
        """Until the room holds the peer's state (every collaborator has been sent it)."""
        return await wait_for_awareness(room, lambda: peer.client_id in room.awareness.states, timeout)

    async def wait_gone(self, peers: list[RoomPeer], room: Any, timeout: float = 5.0) -> bool:
        """Until the room has dropped the peers' states (every collaborator has been told)."""
        ids = {peer.client_id for peer in peers}
        return await wait_for_awareness(room, lambda: not ids & room.awareness.states.keys(), timeout)

    async def end_session(self, mcp_session_id: str) -> None:
        """An MCP session ended: an agent whose last session it was leaves every room shortly after.

        The short delay keeps one collaborator for one-shot clients run one after another; an agent
        that also calls without a session (2026-07-28 era) stays until its idle timeout.
        """
        for key, agent in list(self._agents.items()):
            if mcp_session_id not in agent.sessions:
                continue
            agent.sessions.discard(mcp_session_id)
            if not agent.sessions and not agent.sessionless and agent.leaving is None:
                agent.leaving = asyncio.get_running_loop().call_later(
                    self.linger, self._retire, key, agent, "session ended"
                )

    async def close(self) -> None:
        """Server shutdown: every agent peer leaves."""
        self._bridge.close()
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
        agent = self._agents.get(identity.key)
        if agent is None:
            self._make_room_for(identity)
            agent = self._agents[identity.key] = Agent(identity=identity)
        agent.used(mcp_session_id)
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep(), name="collab-mcp-agent-peers")
        return agent

    def _make_room_for(self, identity: AgentIdentity) -> None:
        """At the per-principal cap, the principal's least recently used agent leaves."""
        principal = identity.key[:2]
        theirs = [(key, agent) for key, agent in self._agents.items() if key[:2] == principal]
        if len(theirs) < self.max_agents_per_principal:
            return
        theirs.sort(key=lambda item: item[1].last_used)
        for key, agent in theirs[: len(theirs) - self.max_agents_per_principal + 1]:
            self._retire(key, agent, "replaced by another agent of the same user")

    def _is_own(self, client_id: int) -> bool:
        return client_id in self._by_client

    def _room_peer(self, agent: Agent, document: OpenDocument) -> RoomPeer:
        peer = agent.rooms.get(document.room_id)
        if peer is not None and peer.active:
            return peer
        peer = RoomPeer(agent, document.room_id, document.path, document.kind, is_own=self._is_own)
        agent.rooms[document.room_id] = peer
        # The Collaborators panel opens what `current` names.
        agent.current = current_widget(document.kind, document.path)
        self._by_client[peer.client_id] = peer
        peer.task = asyncio.get_running_loop().create_task(self._serve_document_peer(peer))
        self._bridge.agent_did(agent, "join", document.path, document.room_id, f"joined {document.path}")
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
        room = await self._global_room.get()
        if room is None:
            return None
        peer = RoomPeer(agent, GLOBAL_AWARENESS_ROOM, None, None, is_own=self._is_own)
        agent.global_peer = peer
        self._by_client[peer.client_id] = peer
        peer.task = asyncio.get_running_loop().create_task(self._serve_global_peer(peer))
        return peer

    def _update_global_fields(self, agent: Agent) -> None:
        if agent.global_peer is None:
            return
        documents = sorted({peer.path for peer in agent.rooms.values() if peer.path})
        current = agent.current if path_of_current(agent.current) in documents else None
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

    def _depart(self, peer: RoomPeer, reason: str) -> None:
        was_active = peer.active
        peer.leave()
        if was_active and peer.path is not None:
            self._bridge.agent_did(peer.agent, "leave", peer.path, peer.room_id, f"left {peer.path} ({reason})")

    def _retire(self, key: tuple[Any, ...], agent: Agent, reason: str) -> None:
        if self._agents.get(key) is not agent:
            return  # already gone (a pending leave after the idle sweep, or the other way round)
        if agent.leaving is not None:
            agent.leaving.cancel()
            agent.leaving = None
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

    def _republish_in(self, room_id: str) -> None:
        # The room does not send existing awareness to a newcomer: late joiners see agents at once.
        for peer in list(self._by_client.values()):
            if peer.room_id == room_id:
                peer.publish()


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
