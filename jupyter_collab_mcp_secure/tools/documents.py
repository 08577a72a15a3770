"""IN PROGRESS: replaced by its owner this session."""
from typing import Any
from ..gateway.errors import UNAVAILABLE, ToolFailure

async def list_documents(path: str | None = None, file_type: str | None = None) -> dict[str, Any]:
    """list_documents"""
    raise ToolFailure(UNAVAILABLE, "list_documents is being built")

async def get_document(path: str, include_collaboration_state: bool = True) -> dict[str, Any]:
    """get_document"""
    raise ToolFailure(UNAVAILABLE, "get_document is being built")

async def create_document_session(path: str, file_type: str | None = None) -> dict[str, Any]:
    """create_document_session"""
    raise ToolFailure(UNAVAILABLE, "create_document_session is being built")

async def update_document(path: str, content: str, position: int | None = None, length: int | None = None) -> dict[str, Any]:
    """update_document"""
    raise ToolFailure(UNAVAILABLE, "update_document is being built")

async def insert_text(path: str, text: str, position: int) -> dict[str, Any]:
    """insert_text"""
    raise ToolFailure(UNAVAILABLE, "insert_text is being built")

async def delete_text(path: str, position: int, length: int) -> dict[str, Any]:
    """delete_text"""
    raise ToolFailure(UNAVAILABLE, "delete_text is being built")

async def get_document_history(path: str, limit: int = 10) -> dict[str, Any]:
    """get_document_history"""
    raise ToolFailure(UNAVAILABLE, "get_document_history is being built")

async def restore_document_version(path: str, version_id: str) -> dict[str, Any]:
    """restore_document_version"""
    raise ToolFailure(UNAVAILABLE, "restore_document_version is being built")

async def fork_document(path: str, title: str | None = None, description: str | None = None, synchronize: bool = False) -> dict[str, Any]:
    """fork_document"""
    raise ToolFailure(UNAVAILABLE, "fork_document is being built")

async def merge_document_fork(path: str, fork_id: str) -> dict[str, Any]:
    """merge_document_fork"""
    raise ToolFailure(UNAVAILABLE, "merge_document_fork is being built")
