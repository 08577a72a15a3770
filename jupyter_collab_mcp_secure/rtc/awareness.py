"""Who is where, read from the rooms' real awareness and JupyterLab's global awareness room.

Nothing here keeps its own table: every answer is computed from the awareness
states the rooms hold right now (plus the activity feed for last-activity
times). States are written by clients, so every field is untrusted input: it
is type-checked here, paths are filtered by the caller's read permission, and
results are marked untrusted by the tools. Only agent peers this server runs
itself are reported as verified, and for them only the state the server's
own peer holds counts: anyone in a room can post an update under an agent
peer's client id.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from pycrdt import Array, Text

from ..room_ids import GLOBAL_AWARENESS_ROOM, document_of, path_of_current
from ..timestamps import rfc3339
from .activity import ActivityFeed
from .adapter import FILE, RTCAdapter
from .agent_peer import PRESENCE_STATUSES, RoomPeer
from .cursors import PositionResolver, TextPoint
from .peers import AgentPeers

MAX_CURSORS_PER_CLIENT = 16
MAX_TEXT_FIELD = 200
_IDENTITY_FIELDS = ("display_name", "initials", "color", "kind", "is_agent", "verified", "agent_for")
# JupyterLab gives people `var(--jp-collaborator-colorN)`; a client outside the browser cannot draw that.
# The values of JupyterLab's default (light) theme.
JUPYTERLAB_COLLABORATOR_COLORS = {
    "1": "#ffad8e",
    "2": "#dac83d",
    "3": "#72dd76",
    "4": "#00e4d0",
    "5": "#45d4ff",
    "6": "#e2b1ff",
    "7": "#ff9de6",
}
_CSS_VARIABLE = re.compile(r"var\(\s*--jp-collaborator-color(\d+)\s*\)")
_HEX_COLOR = re.compile(r"#(?:[0-9a-fA-F]{3,4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})")


@dataclass(frozen=True)
class DocumentRoom:
    room_id: str
    path: str
    kind: str
    file_id: str
    room: Any


@dataclass(frozen=True)
class Sighting:
    """One awareness client seen in one room."""

    room_id: str
    path: str | None  # None for the global awareness room
    client_id: int
    state: dict[str, Any]
    user: dict[str, Any]
    last_seen_ms: int | None
    own: RoomPeer | None  # set when the client is an agent peer run by this server


def _text(value: Any) -> str | None:
    return value[:MAX_TEXT_FIELD] if isinstance(value, str) and value else None


def concrete_color(value: Any) -> str | None:
    """A colour a client can draw (`#rrggbb`), from a hex value or JupyterLab's palette variable; else None."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    if _HEX_COLOR.fullmatch(value):
        return value.lower()
    variable = _CSS_VARIABLE.fullmatch(value)
    return JUPYTERLAB_COLLABORATOR_COLORS.get(variable.group(1)) if variable else None


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return rfc3339(ms / 1000, millis=True)


def _plausible_path(value: Any) -> bool:
    return (
        isinstance(value, str)
        and 0 < len(value) <= 4096
        and not value.startswith("/")
        and ".." not in value.split("/")
        and "\\" not in value
    )


class AwarenessReader:
    def __init__(self, rtc: RTCAdapter, peers: AgentPeers, can_read: Callable[[str], bool]) -> None:
        self.rtc = rtc
        self.peers = peers
        self._can_read = can_read

    @property
    def activity(self) -> ActivityFeed:
        return self.peers.activity

    def can_read(self, path: Any) -> bool:
        # Paths inside awareness states are whatever a client wrote: only plausible ones reach the policy.
        if not _plausible_path(path):
            return False
        try:
            return bool(self._can_read(path))
        except Exception:  # noqa: BLE001 - a path the policy cannot even evaluate is not readable
            return False

    # --- rooms ---------------------------------------------------------------------------

    def document_rooms(self) -> list[DocumentRoom]:
        """Open document rooms whose document the caller may read."""
        rooms = []
        for room_id, room in list(self.rtc.websocket_server.rooms.items()):
            document = document_of(room_id)
            if document is None:
                continue
            kind, file_id = document
            try:
                path = self.rtc.file_ids.get_path(file_id)
            except Exception:  # noqa: BLE001 - a room whose file id is gone is not listed
                path = None
            if path is None or not self.can_read(path):
                continue
            rooms.append(DocumentRoom(room_id, path, kind, file_id, room))
        return rooms

    def sightings_in(self, room_id: str, path: str | None, room: Any) -> Iterator[Sighting]:
        awareness = room.awareness
        for client_id, state in list(awareness.states.items()):
            own = self.peers.peer_of_client(client_id)
            if own is not None and own.room_id == room_id:
                # Our own agent: what its peer holds, never what someone posted under its client id.
                state = own.state
            elif own is not None:
                own = None  # our client id used in a room the peer is not in: a stranger posing
            if not isinstance(state, dict):
                continue
            user = state.get("user")
            if not isinstance(user, dict) or not _text(user.get("username")):
                continue  # the server's own state, or a client that has not said who it is
            meta = awareness.meta.get(client_id) or {}
            yield Sighting(room_id, path, client_id, state, user, meta.get("lastUpdated"), own)

    def all_sightings(self) -> list[Sighting]:
        sightings = []
        for room in self.document_rooms():
            sightings.extend(self.sightings_in(room.room_id, room.path, room.room))
        global_room = self.rtc.websocket_server.rooms.get(GLOBAL_AWARENESS_ROOM)
        if global_room is not None:
            sightings.extend(self.sightings_in(GLOBAL_AWARENESS_ROOM, None, global_room))
        return sightings

    # --- users -----------------------------------------------------------------------------

    def _documents_of(self, sighting: Sighting) -> set[str]:
        if sighting.path is not None:
            return {sighting.path}
        listed = sighting.state.get("documents")
        if not isinstance(listed, list):
            return set()
        return {path for path in listed[:200] if self.can_read(path)}

    def _current_of(self, sighting: Sighting) -> str | None:
        if sighting.path is not None:
            return None
        path = path_of_current(sighting.state.get("current"))
        return path if path is not None and self.can_read(path) else None

    def online_users(self, document_path: str | None = None) -> list[dict[str, Any]]:
        users: dict[str, dict[str, Any]] = {}
        for sighting in self.all_sightings():
            username = _text(sighting.user.get("username")) or ""
            user = users.get(username)
            if user is None:
                user = users[username] = self._new_user(sighting)
            elif sighting.own is not None and not user["verified"]:
                # A client claiming an agent's username does not hide the verified agent.
                user.update({k: v for k, v in self._new_user(sighting).items() if k in _IDENTITY_FIELDS})
            user["documents"].update(self._documents_of(sighting))
            user["clients"] += 1
            current = self._current_of(sighting)
            if current:
                user["current_document"] = current
            if sighting.path is not None:
                user["_rooms"].add(sighting.room_id)
            seen = sighting.last_seen_ms
            if seen is not None and (user["_seen"] is None or seen > user["_seen"]):
                user["_seen"] = seen
        listed = []
        for user in users.values():
            if document_path is not None and document_path not in user["documents"]:
                continue
            user["documents"] = sorted(user["documents"])
            user["sessions"] = sorted(user.pop("_rooms"))
            user["last_seen"] = _iso(user.pop("_seen"))
            listed.append(user)
        listed.sort(key=lambda user: (user["is_agent"], user["user_id"]))
        return listed

    def _new_user(self, sighting: Sighting) -> dict[str, Any]:
        user = sighting.user
        own = sighting.own
        claimed_agent = bool(user.get("is_agent")) or isinstance(sighting.state.get("agent"), dict)
        entry: dict[str, Any] = {
            "user_id": _text(user.get("username")),
            "display_name": _display_name(sighting),
            "initials": _text(user.get("initials")),
            "color": concrete_color(user.get("color")),
            "kind": "agent" if own is not None or claimed_agent else "person",
            "is_agent": own is not None or claimed_agent,
            # Only agents run by this server have an identity the server verified.
            "verified": own is not None,
            "documents": set(),
            "current_document": None,
            "clients": 0,
            "_rooms": set(),
            "_seen": None,
        }
        if own is not None:
            entry["agent_for"] = own.agent.identity.user
        return entry

    def presence(self, user_id: str, document_path: str | None = None) -> dict[str, Any]:
        sightings = [s for s in self.all_sightings() if _text(s.user.get("username")) == user_id]
        if document_path is not None:
            in_document = any(document_path in self._documents_of(s) for s in sightings)
        status, message, declared_activity = "offline", None, None
        for sighting in sightings:
            presence = sighting.state.get("presence")
            if isinstance(presence, dict) and presence.get("status") in PRESENCE_STATUSES:
                status = presence["status"]
                message = _text(presence.get("message"))
                declared_activity = _text(presence.get("last_activity")) or declared_activity
                if sighting.own is not None:
                    break  # our own agent's state is authoritative over anything a client claims
            elif status == "offline":
                status = "online"
        seen = [s.last_seen_ms for s in sightings if s.last_seen_ms is not None]
        documents = sorted(set().union(*(self._documents_of(s) for s in sightings))) if sightings else []
        current = next((c for c in (self._current_of(s) for s in sightings) if c), None)
        from_feed = self.activity.last_activity_of(user_id, self.can_read)
        result: dict[str, Any] = {
            "user_id": user_id,
            "online": bool(sightings),
            "status": status,
            "message": message,
            "display_name": next((_display_name(s) for s in sightings), None),
            "is_agent": any(s.own is not None or bool(s.user.get("is_agent")) for s in sightings),
            "verified": any(s.own is not None for s in sightings),
            "last_activity": max((t for t in (declared_activity, from_feed) if t), default=None),
            "last_seen": _iso(max(seen)) if seen else None,
            "current_document": current,
            "documents": documents,
        }
        if document_path is not None:
            result["document_path"] = document_path
            result["in_document"] = in_document
        return result

    # --- cursors -------------------------------------------------------------------------

    def cursors(self, room: DocumentRoom) -> list[dict[str, Any]]:
        resolver = PositionResolver(room.room.ydoc, _texts_of(room))
        found = []
        for sighting in self.sightings_in(room.room_id, room.path, room.room):
            cursors = sighting.state.get("cursors")
            if not isinstance(cursors, list):
                continue
            resolved = []
            for cursor in cursors[:MAX_CURSORS_PER_CLIENT]:
                if not isinstance(cursor, dict):
                    continue
                head = resolver.resolve(cursor.get("head"))
                if head is None:
                    continue
                anchor = resolver.resolve(cursor.get("anchor")) or head
                resolved.append(_cursor_view(head, anchor, cursor.get("primary")))
            if not resolved:
                continue
            found.append(
                {
                    "user_id": _text(sighting.user.get("username")),
                    "display_name": _display_name(sighting),
                    "client_id": sighting.client_id,
                    "is_agent": sighting.own is not None or bool(sighting.user.get("is_agent")),
                    "verified": sighting.own is not None,
                    "cursors": resolved,
                }
            )
        return found

    # --- sessions ------------------------------------------------------------------------

    def sessions(self, document_path: str | None = None) -> list[dict[str, Any]]:
        sessions = []
        for room in self.document_rooms():
            if document_path is not None and room.path != document_path:
                continue
            participants = [
                {
                    "user_id": _text(s.user.get("username")),
                    "display_name": _display_name(s),
                    "client_id": s.client_id,
                    "is_agent": s.own is not None or bool(s.user.get("is_agent")),
                    "verified": s.own is not None,
                }
                for s in self.sightings_in(room.room_id, room.path, room.room)
            ]
            sessions.append(
                {
                    "session_id": room.room_id,
                    "document_path": room.path,
                    "kind": room.kind,
                    "file_id": room.file_id,
                    "participants": participants,
                    "participant_count": len(participants),
                    # People and agents counted apart: one agent is one participant, whatever its client does.
                    "people_count": sum(not p["is_agent"] for p in participants),
                    "agent_count": sum(bool(p["is_agent"]) for p in participants),
                    "connections": len(getattr(room.room, "clients", ())),
                }
            )
        sessions.sort(key=lambda session: session["document_path"])
        return sessions


def _display_name(sighting: Sighting) -> str | None:
    if sighting.own is not None:
        # JupyterLab's panel line also carries status and activity; tools report those in their own fields.
        return sighting.own.agent.identity.label
    user = sighting.user
    return _text(user.get("display_name")) or _text(user.get("name")) or _text(user.get("username"))


def _texts_of(room: DocumentRoom) -> list[tuple[str | None, Text]]:
    ydoc = room.room.ydoc
    if room.kind == FILE:
        return [(None, ydoc.get("source", type=Text))]
    texts = []
    for ycell in ydoc.get("cells", type=Array):
        source = ycell.get("source")
        if isinstance(source, Text):
            texts.append((ycell.get("id"), source))
    return texts


def _cursor_view(head: TextPoint, anchor: TextPoint, primary: Any) -> dict[str, Any]:
    selection = None
    if anchor != head and anchor.cell_id == head.cell_id:
        start, end = sorted((anchor, head), key=lambda point: (point.line, point.column))
        selection = {"start": start.as_dict(), "end": end.as_dict()}
    return {"position": head.as_dict(), "selection": selection, "primary": primary is not False}
