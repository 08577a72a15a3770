"""The startup check that registry path arguments are parameters of their tools."""

from __future__ import annotations

import pytest

from jupyter_collab_mcp_secure.policy.tool_paths import RegistryMismatch, check_tool_paths
from jupyter_collab_mcp_secure.registry import READS, TOOLS, ToolSpec
from jupyter_collab_mcp_secure.server import tool_function


def test_the_shipped_registry_matches_its_tools():
    assert check_tool_paths(TOOLS, tool_function) == {"broadcast_user_activity"}


def test_a_renamed_path_parameter_stops_the_server():
    async def get_notebook(notebook_path: str) -> dict:
        return {}

    spec = ToolSpec("get_notebook", "notebooks", "read", ("path",), title="Read a notebook", hints=READS)
    with pytest.raises(RegistryMismatch, match="'get_notebook'.*\\['path'\\]"):
        check_tool_paths([spec], lambda _: get_notebook)


def test_a_document_tool_without_a_document_argument_stops_the_server():
    async def join_session(room: str) -> dict:
        return {}

    spec = ToolSpec("join_session", "awareness", "read", title="Join a session", hints=READS)
    with pytest.raises(RegistryMismatch, match="takes no document argument"):
        check_tool_paths([spec], lambda _: join_session)
