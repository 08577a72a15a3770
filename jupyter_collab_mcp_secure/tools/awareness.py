"""Awareness tools: who is online and where, cursors, presence, activity, and collaboration sessions.

Everything is read from the rooms' awareness (and JupyterLab's global
awareness room); the agent's own presence, cursor and broadcasts are written
into its awareness state as a collaborator peer, so people see them in
JupyterLab. Names, messages and descriptions come from people and agents:
results are marked untrusted.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field

from ..gateway.errors import FORBIDDEN, INVALID_ARGUMENT, NOT_FOUND, ToolFailure
from ..room_ids import document_of
from ..rtc.adapter import FILE, NOTEBOOK
from ..rtc.agent_peer import PresenceStatus
from ..rtc.awareness import AwarenessReader, DocumentRoom
from ..rtc.cursors import offset_of, relative_position
from ..rtc.peers import source_text
from .content import call, services, with_untrusted

MAX_ACTIVITY_LIMIT = 200
MAX_PRESENCE_MESSAGE = 280
MAX_DESCRIPTION = 1000
MAX_ACTIVITY_TYPE = 64
MAX_METADATA_BYTES = 4096
MAX_USER_ID = 256


class TextPosition(BaseModel):
    line: int = Field(description="Line number (0-based)")
    column: int = Field(description="Column number (0-based, in characters)")


class TextSelection(BaseModel):
    start: TextPosition
    end: TextPosition


def _reader() -> AwarenessReader:
    current = call()
    return AwarenessReader(services().rtc, services().peers, current.can_read)


def _kind_of(path: str) -> str:
    return NOTEBOOK if path.endswith(".ipynb") else FILE


def _narrowing_path(document_path: str | None) -> str | None:
    """The canonical `document_path` of a listing tool, which the caller must be able to read."""
    if document_path is None:
        return None
    current = call()
    path = current.paths[0]
    if not current.can_read(path):
        raise ToolFailure(FORBIDDEN, f"read on '{path}' is not allowed")
    return path


async def get_online_users(document_path: str | None = None) -> dict[str, Any]:
    """List the people and agents online now, from the collaboration awareness.

    Each user has `user_id` (their username, used by the other awareness
    tools), a display name, whether they are a person or an agent (`verified`
    is true only for agents this server runs), and the documents they have
    open (only documents you may read are shown). With `document_path`, only
    users in that document. `people` and `agents` count each kind.
    """
    users = _reader().online_users(_narrowing_path(document_path))
    agents = sum(bool(user["is_agent"]) for user in users)
    return with_untrusted({"users": users, "count": len(users), "people": len(users) - agents, "agents": agents})


async def get_user_presence(user_id: str, document_path: str | None = None) -> dict[str, Any]:
    """Presence of one user (by `user_id`, their username): online or not, status
    (online/away/busy/offline) and message, last activity, current and open documents.

    With `document_path`, also whether they are in that document.
    """
    if not user_id or len(user_id) > MAX_USER_ID:
        raise ToolFailure(INVALID_ARGUMENT, "user_id must be a non-empty username")
    presence = _reader().presence(user_id, _narrowing_path(document_path))
    return with_untrusted(presence)


async def set_user_presence(status: PresenceStatus = "online", message: str | None = None) -> dict[str, Any]:
    """Set your own presence (online, away, busy or offline, and an optional message).

    Collaborators see it in your awareness state as an agent peer (in
    JupyterLab and through get_user_presence).
    """
    if message is not None and len(message) > MAX_PRESENCE_MESSAGE:
        raise ToolFailure(INVALID_ARGUMENT, f"message is limited to {MAX_PRESENCE_MESSAGE} characters")
    current = call()
    agent = await services().peers.set_presence(current.principal, current.mcp_session_id, status, message)
    return {
        "user_id": agent.identity.username,
        "display_name": agent.identity.label,
        "status": agent.presence["status"],
        "message": agent.presence["message"],
        "since": agent.presence["since"],
        "last_activity": agent.last_activity,
    }


async def get_user_cursors(document_path: str) -> dict[str, Any]:
    """Cursor positions and selections of everyone in a document, as 0-based line and column
    (and `cell_id` in notebooks). Empty when nobody has the document open.
    """
    current = call()
    path = current.paths[0]
    kind = _kind_of(path)
    rtc = services().rtc
    await rtc.require_file(path, kind)
    room_id, file_id = rtc.room_id_for(path, kind)
    reader = _reader()
    room = rtc.live_room(room_id)
    cursors = reader.cursors(DocumentRoom(room_id, path, kind, file_id, room)) if room is not None else []
    return with_untrusted({"document_path": path, "session_id": room_id, "users": cursors, "count": len(cursors)})


async def update_cursor_position(
    document_path: str,
    position: TextPosition,
    selection: TextSelection | None = None,
    cell_id: str | None = None,
) -> dict[str, Any]:
    """Move your cursor (and selection) in a document; collaborators see it in JupyterLab.

    Positions are 0-based line and column in characters; in a notebook they
    are inside the cell given by `cell_id` (required for notebooks). With a
    `selection`, `position` must be its start or its end (where the caret is).
    """
    current = call()
    path = current.paths[0]
    kind = _kind_of(path)
    if kind == FILE and cell_id is not None:
        raise ToolFailure(INVALID_ARGUMENT, "cell_id applies to notebooks only")
    if kind == NOTEBOOK and not cell_id:
        raise ToolFailure(INVALID_ARGUMENT, "cell_id is required for notebooks")
    async with services().rtc.open(path, kind) as document:
        ytext = source_text(document, cell_id)
        assert ytext is not None
        text = str(ytext)
        head = _offset(text, position, "position")
        anchor = head
        if selection is not None:
            start, end = (
                _offset(text, selection.start, "selection.start"),
                _offset(text, selection.end, "selection.end"),
            )
            if head not in (start, end):
                raise ToolFailure(INVALID_ARGUMENT, "position must be the start or the end of the selection")
            anchor = start if head == end else end
        peer = await services().peers.set_cursor(
            current.principal,
            current.mcp_session_id,
            document,
            head=relative_position(ytext, head),
            anchor=relative_position(ytext, anchor),
        )
        result: dict[str, Any] = {
            "document_path": path,
            "session_id": document.room_id,
            "client_id": peer.client_id,
            "position": position.model_dump(),
            "selection": selection.model_dump() if selection is not None else None,
        }
        if cell_id is not None:
            result["cell_id"] = cell_id
        return result


def _offset(text: str, point: TextPosition, name: str) -> int:
    try:
        return offset_of(text, point.line, point.column)
    except ValueError as error:
        raise ToolFailure(INVALID_ARGUMENT, f"{name}: {error}") from None


async def get_user_activity(document_path: str | None = None, limit: int = 20) -> dict[str, Any]:
    """Recent activity, newest first: edits and executions by agents, broadcasts, and people and
    agents joining and leaving documents. Only documents you may read are included.
    """
    if not 1 <= limit <= MAX_ACTIVITY_LIMIT:
        raise ToolFailure(INVALID_ARGUMENT, f"limit must be between 1 and {MAX_ACTIVITY_LIMIT}")
    path = _narrowing_path(document_path)
    reader = _reader()
    entries = [entry.as_dict() for entry in reader.activity.recent(limit, reader.can_read, path)]
    return with_untrusted({"activities": entries, "count": len(entries)})


async def broadcast_user_activity(
    activity_type: str,
    description: str,
    document_path: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Tell collaborators what you are doing (e.g. activity_type 'edit', 'review', 'execute').

    It goes to the activity feed and into your awareness state, so JupyterLab
    users see it; with `document_path` you also join that document as a
    visible collaborator.
    """
    if not activity_type or len(activity_type) > MAX_ACTIVITY_TYPE or not activity_type.isprintable():
        raise ToolFailure(INVALID_ARGUMENT, f"activity_type must be 1-{MAX_ACTIVITY_TYPE} printable characters")
    if not description or len(description) > MAX_DESCRIPTION:
        raise ToolFailure(INVALID_ARGUMENT, f"description must be 1-{MAX_DESCRIPTION} characters")
    if metadata is not None:
        try:
            size = len(json.dumps(metadata).encode())
        except (TypeError, ValueError):
            raise ToolFailure(INVALID_ARGUMENT, "metadata must be JSON") from None
        if size > MAX_METADATA_BYTES:
            raise ToolFailure(INVALID_ARGUMENT, f"metadata is limited to {MAX_METADATA_BYTES} bytes of JSON")
    current = call()
    peers = services().peers
    if document_path is None:
        entry = await peers.broadcast(
            current.principal, current.mcp_session_id, activity_type, description, metadata, None
        )
    else:
        path = current.paths[0]
        async with services().rtc.open(path, _kind_of(path)) as document:
            entry = await peers.broadcast(
                current.principal, current.mcp_session_id, activity_type, description, metadata, document
            )
    return with_untrusted({"broadcast": True, "activity": entry.as_dict()})


async def get_active_sessions(document_path: str | None = None) -> dict[str, Any]:
    """Open collaboration sessions (rooms) with their participants, people and agents.

    `session_id` is the room id (e.g. `json:notebook:<file id>`), usable with
    join_session and leave_session. Only documents you may read are listed.
    """
    sessions = _reader().sessions(_narrowing_path(document_path))
    return with_untrusted(
        {
            "sessions": sessions,
            "count": len(sessions),
            "collaboration_session_id": services().rtc.collaboration_session_id(),
        }
    )


async def join_session(session_id: str) -> dict[str, Any]:
    """Join a collaboration session (a room id from get_active_sessions or create_*_session)
    as a visible collaborator; people in the document see you at once.
    """
    current = call()
    path = current.paths[0]
    document = document_of(session_id)  # the resolve stage refused ids that name no document
    kind = document[0] if document is not None else FILE
    async with services().rtc.open(path, kind) as document:
        if document.room_id != session_id:
            raise ToolFailure(NOT_FOUND, f"no collaboration session '{session_id}'")
        peer = await services().peers.join(current.principal, current.mcp_session_id, document)
        visible = await services().peers.wait_visible(peer, document.room)
        participants = _reader().sessions(path)
    return with_untrusted(
        {
            "session_id": session_id,
            "document_path": path,
            "kind": kind,
            "joined": visible,
            "client_id": peer.client_id,
            "participants": participants[0]["participants"] if participants else [],
        }
    )


async def leave_session(session_id: str) -> dict[str, Any]:
    """Leave a collaboration session at once: your agent stops showing in that document.

    Only your own agent leaves; `left` is false when you were not in it.
    """
    current = call()
    peers = services().peers
    room = services().rtc.live_room(session_id)
    gone = peers.leave(current.principal, session_id)
    if room is not None:
        await peers.wait_gone(gone, room)
    return {"session_id": session_id, "document_path": current.paths[0], "left": bool(gone)}
