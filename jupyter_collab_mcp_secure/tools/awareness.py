"""IN PROGRESS: replaced by its owner this session."""
from typing import Any
from ..gateway.errors import UNAVAILABLE, ToolFailure

async def get_online_users(document_path: str | None = None) -> dict[str, Any]:
    """get_online_users"""
    raise ToolFailure(UNAVAILABLE, "get_online_users is being built")

async def get_user_presence(user_id: str, document_path: str | None = None) -> dict[str, Any]:
    """get_user_presence"""
    raise ToolFailure(UNAVAILABLE, "get_user_presence is being built")

async def set_user_presence(status: str = 'online', message: str | None = None) -> dict[str, Any]:
    """set_user_presence"""
    raise ToolFailure(UNAVAILABLE, "set_user_presence is being built")

async def get_user_cursors(document_path: str) -> dict[str, Any]:
    """get_user_cursors"""
    raise ToolFailure(UNAVAILABLE, "get_user_cursors is being built")

async def update_cursor_position(document_path: str, position: dict, selection: dict | None = None) -> dict[str, Any]:
    """update_cursor_position"""
    raise ToolFailure(UNAVAILABLE, "update_cursor_position is being built")

async def get_user_activity(document_path: str | None = None, limit: int = 20) -> dict[str, Any]:
    """get_user_activity"""
    raise ToolFailure(UNAVAILABLE, "get_user_activity is being built")

async def broadcast_user_activity(activity_type: str, description: str, document_path: str | None = None, metadata: dict | None = None) -> dict[str, Any]:
    """broadcast_user_activity"""
    raise ToolFailure(UNAVAILABLE, "broadcast_user_activity is being built")

async def get_active_sessions(document_path: str | None = None) -> dict[str, Any]:
    """get_active_sessions"""
    raise ToolFailure(UNAVAILABLE, "get_active_sessions is being built")

async def join_session(session_id: str) -> dict[str, Any]:
    """join_session"""
    raise ToolFailure(UNAVAILABLE, "join_session is being built")

async def leave_session(session_id: str) -> dict[str, Any]:
    """leave_session"""
    raise ToolFailure(UNAVAILABLE, "leave_session is being built")
