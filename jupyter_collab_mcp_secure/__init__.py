"""MCP for Jupyter real-time collaboration, behind an authenticated, audited, policy-checked gateway."""

from .extension import CollabMCP

__all__ = ["CollabMCP"]


def _jupyter_server_extension_points() -> list[dict[str, object]]:
    return [{"module": "jupyter_collab_mcp_secure", "app": CollabMCP}]
