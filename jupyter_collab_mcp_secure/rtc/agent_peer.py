"""One agent as a collaborator: its state, and its awareness client in each room it works in.

The state an agent peer holds is the only true one: anyone in a room can
send an awareness update under the peer's client id (with a higher clock, so
the room takes it). The peer notices it in the room's traffic, outbids the
clock and publishes its own state again, and readers trust only the state the
peer object holds, never the room's copy.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from pycrdt import Awareness, Doc, Encoder, create_awareness_message

from ..timestamps import utc_now
from .agent_identity import AgentIdentity
from .peer_channel import PeerChannel

# What JupyterLab's Collaborators panel shows: the label, status and activity in one bounded line.
MAX_DISPLAY_NAME = 200

# The statuses a presence may carry: the tool's schema, its check and the reading of people's states use this one list.
PresenceStatus = Literal["online", "away", "busy", "offline"]
PRESENCE_STATUSES: tuple[str, ...] = get_args(PresenceStatus)


class RoomPeer:
    """The agent's awareness client in one room, served by the room like a websocket."""

    def __init__(
        self,
        agent: Agent,
        room_id: str,
        path: str | None,
        kind: str | None,
        is_own: Callable[[int], bool] = lambda client_id: False,
    ) -> None:
        self.agent = agent
        self.room_id = room_id
        self.path = path
        self.kind = kind
        self.awareness = Awareness(Doc())
        self.channel = PeerChannel(room_id, self.client_id, self.publish, is_own=is_own, on_own=self.defend)
        self.extra: dict[str, Any] = {}
        self.task: asyncio.Task[None] | None = None

    @property
    def client_id(self) -> int:
        return self.awareness.client_id

    @property
    def active(self) -> bool:
        return not self.channel.closed

    @property
    def state(self) -> dict[str, Any] | None:
        """The state this server published for the peer (what readers trust), None once it left."""
        return self.awareness.get_local_state() if self.active else None

    def publish(self) -> None:
        """Send the current state to the room (also renews it before peers time it out)."""
        if not self.active:
            return
        self.awareness.set_local_state({**self.agent.state(), **self.extra})
        self._send()

    def defend(self, clock: int, state: str) -> None:
        """The room carried an update under this peer's client id: unless it is our own, outbid it."""
        mine = self.state
        if mine is None:
            return
        own_clock = self.awareness.meta.get(self.client_id, {}).get("clock", 0)
        if clock < own_clock:
            return  # older than what the room has from us: it cannot win
        try:
            if clock == own_clock and json.loads(state) == mine:
                return  # the room's echo of our own update
        except ValueError:
            pass
        # pycrdt keeps a local state that a remote update removes and moves its clock past the remote's.
        encoder = Encoder()
        encoder.write_var_uint(1)
        encoder.write_var_uint(self.client_id)
        encoder.write_var_uint(clock)
        encoder.write_var_string("null")
        self.awareness.apply_awareness_update(encoder.to_bytes(), "outbid")
        self.publish()

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
    """One agent (a principal through one MCP client), whichever MCP sessions or protocol era it calls through."""

    identity: AgentIdentity
    sessions: set[str] = field(default_factory=set)
    # Called without a session (2026-07-28 era): nothing tells it left, only the idle timeout.
    sessionless: bool = False
    presence: dict[str, Any] = field(default_factory=lambda: {"status": "online", "message": None})
    broadcast: dict[str, Any] | None = None
    doing: str | None = None
    rooms: dict[str, RoomPeer] = field(default_factory=dict)
    global_peer: RoomPeer | None = None
    current: str | None = None
    last_used: float = field(default_factory=time.monotonic)
    last_activity: str = field(default_factory=utc_now)
    leaving: asyncio.TimerHandle | None = None

    def state(self) -> dict[str, Any]:
        user = self.identity.user_field()
        user["display_name"] = self.display_line()
        state: dict[str, Any] = {
            "user": user,
            "agent": {
                "for": self.identity.user,
                "verified": self.identity.verified_agent,
            },
            "presence": {**self.presence, "last_activity": self.last_activity},
        }
        if self.broadcast is not None:
            state["activity"] = self.broadcast
        return state

    def display_line(self) -> str:
        """ "<agent> for <user> · busy: reviewing · edit on x.ipynb", as JupyterLab's panel shows display_name."""
        status = self.presence.get("status") or "online"
        message = self.presence.get("message")
        parts = [self.identity.label, f"{status}: {message}" if message else status]
        doing = (self.broadcast or {}).get("description") or self.doing
        if doing:
            parts.append(doing)
        line = " · ".join(parts)
        return line if len(line) <= MAX_DISPLAY_NAME else line[: MAX_DISPLAY_NAME - 1] + "…"

    def peers(self) -> list[RoomPeer]:
        peers = list(self.rooms.values())
        if self.global_peer is not None:
            peers.append(self.global_peer)
        return peers

    def used(self, mcp_session_id: str | None) -> None:
        self.last_used = time.monotonic()
        self.last_activity = utc_now()
        if mcp_session_id is None:
            self.sessionless = True
        else:
            self.sessions.add(mcp_session_id)
        if self.leaving is not None:
            self.leaving.cancel()
            self.leaving = None
