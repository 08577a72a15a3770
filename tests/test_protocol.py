"""What every client is told: the server's version, each tool's title and annotations, readable argument errors."""

from __future__ import annotations

from importlib.metadata import version

import pytest
from harness import LEGACY, MODERN, JupyterServer, call_error, mcp_client
from mcp_types import SERVER_INFO_META_KEY

from jupyter_collab_mcp_secure.registry import BY_NAME, READ, TOOLS

# Tools that change what others see, even though reading the document is all they need.
STATE_CHANGING = ("join_session", "leave_session", "update_cursor_position", "broadcast_user_activity")
# Tools that overwrite or remove what collaborators wrote.
DESTRUCTIVE = (
    "update_notebook_cell",
    "delete_notebook_cell",
    "execute_notebook_cell",
    "update_document",
    "delete_text",
    "restore_document_version",
    "merge_document_fork",
)


@pytest.mark.parametrize("mode", ["auto", LEGACY])
async def test_server_info_carries_the_package_version(server: JupyterServer, mode: str) -> None:
    expected = {"name": "jupyter-collab-mcp-secure", "version": version("jupyter-collab-mcp-secure")}
    async with mcp_client(server, mode=mode) as client:
        listed = await client.list_tools()
        info = client.server_info
    assert info is not None
    assert info.model_dump(exclude_none=True) == expected
    if mode == "auto":
        # The 2026-07-28 era stamps every result, so a client that skipped discovery learns it too.
        assert (listed.meta or {})[SERVER_INFO_META_KEY] == expected


async def test_every_tool_has_a_title_and_its_registry_annotations(server: JupyterServer) -> None:
    async with mcp_client(server) as client:
        listed = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert sorted(listed) == sorted(spec.name for spec in TOOLS)
    for name, tool in listed.items():
        spec, hints = BY_NAME[name], tool.annotations
        assert tool.title == spec.title and tool.title, name
        assert hints is not None, name
        assert (hints.read_only_hint, hints.destructive_hint, hints.idempotent_hint, hints.open_world_hint) == (
            spec.hints.read_only,
            spec.hints.destructive,
            spec.hints.idempotent,
            False,
        ), name
        # Anything beyond read changes the document; reads that change presence are not read-only either.
        if spec.action != READ or name in STATE_CHANGING or name == "set_user_presence":
            assert not hints.read_only_hint, name
        if name in DESTRUCTIVE:
            assert hints.destructive_hint, name
        if name.startswith(("get_", "list_")):
            assert hints.read_only_hint and hints.idempotent_hint, name


@pytest.mark.parametrize(
    ("tool", "arguments", "message"),
    [
        (
            "update_notebook_cell",
            {"path": "notebooks/demo.ipynb", "content": "x = 1"},
            "missing required argument 'cell_id'",
        ),
        (
            "insert_notebook_cell",
            {"path": "notebooks/demo.ipynb", "content": "x = 1", "position": "second"},
            "argument 'position' should be a valid integer, not a string",
        ),
        (
            "get_notebook",
            {"path": "notebooks/demo.ipynb", "include_collaboration_state": [1]},
            "argument 'include_collaboration_state' should be a valid boolean, not an array",
        ),
        (
            "get_notebook",
            {"path": "notebooks/demo.ipynb", "expected_versoin": "v1"},
            "unexpected argument 'expected_versoin'; this tool takes fork_id, include_collaboration_state, path",
        ),
    ],
    ids=["missing", "wrong type", "wrong type nested", "extra"],
)
@pytest.mark.parametrize("mode", [MODERN, LEGACY])
async def test_argument_errors_are_one_readable_line(
    server: JupyterServer, mode: str, tool: str, arguments: dict, message: str
) -> None:
    async with mcp_client(server, mode=mode) as client:
        error = await call_error(client, tool, **arguments)
    assert error == {"code": "invalid_argument", "message": message}
