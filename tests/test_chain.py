"""No registered tool can run without passing the gateway chain."""

from __future__ import annotations

from typing import Any

import pytest
from harness import JupyterServer, audit_records, mcp_client
from jwt_support import token

from jupyter_collab_mcp_secure.gateway.context import CallContext, current_call
from jupyter_collab_mcp_secure.identity.principal import AuthMethod, Principal
from jupyter_collab_mcp_secure.registry import BY_NAME, TOOLS
from jupyter_collab_mcp_secure.server import guarded, tool_function

DEMO = "notebooks/demo.ipynb"
TEXT = "notes.txt"


def arguments_for(tool: str, session_id: str) -> dict[str, Any]:
    """Well-formed arguments for every tool, so only the gateway can stop the call."""
    return {
        "list_notebooks": {},
        "get_notebook": {"path": DEMO},
        "create_notebook_session": {"path": DEMO},
        "update_notebook_cell": {"path": DEMO, "cell_id": "c1", "content": "y = 2"},
        "insert_notebook_cell": {"path": DEMO, "content": "z = 3", "position": 0},
        "delete_notebook_cell": {"path": DEMO, "cell_id": "c1"},
        "execute_notebook_cell": {"path": DEMO, "cell_id": "c1"},
        "list_documents": {},
        "get_document": {"path": TEXT},
        "create_document_session": {"path": TEXT},
        "update_document": {"path": TEXT, "content": "replaced"},
        "insert_text": {"path": TEXT, "text": "x", "position": 0},
        "delete_text": {"path": TEXT, "position": 0, "length": 1},
        "get_document_history": {"path": TEXT},
        "restore_document_version": {"path": TEXT, "version_id": "v1"},
        "fork_document": {"path": TEXT},
        "merge_document_fork": {"path": TEXT, "fork_id": "f1"},
        "get_online_users": {},
        "get_user_presence": {"user_id": "owner"},
        "set_user_presence": {"status": "away"},
        "get_user_cursors": {"document_path": TEXT},
        "update_cursor_position": {"document_path": TEXT, "position": {"line": 0, "column": 0}},
        "get_user_activity": {},
        "broadcast_user_activity": {"activity_type": "edit", "description": "hello", "document_path": TEXT},
        "get_active_sessions": {},
        "join_session": {"session_id": session_id},
        "leave_session": {"session_id": session_id},
    }[tool]


def test_every_tool_has_arguments_and_a_function() -> None:
    for spec in TOOLS:
        assert arguments_for(spec.name, "s") is not None
        assert tool_function(spec).__name__ == spec.name


async def test_every_registered_tool_passes_the_chain(jwt_server: JupyterServer) -> None:
    session = jwt_server.api(
        "PUT", f"api/collaboration/session/{DEMO}", json={"format": "json", "type": "notebook"}
    ).json()
    session_id = f"json:notebook:{session['fileId']}"
    outcomes: dict[str, dict[str, Any]] = {}
    async with mcp_client(jwt_server, token("RS256", sub="mallory", azp="probe")) as client:
        listed = await client.list_tools()
        assert {tool.name for tool in listed.tools} == set(BY_NAME)
        for spec in TOOLS:
            result = await client.call_tool(spec.name, arguments_for(spec.name, session_id))
            outcomes[spec.name] = {"is_error": result.is_error, "body": result.structured_content}
    for listing, key in (("list_notebooks", "notebooks"), ("list_documents", "documents")):
        assert outcomes[listing]["body"][key] == [], listing
    assert outcomes["get_active_sessions"]["body"]["sessions"] == []
    records = await audit_records(
        jwt_server, lambda r: r.get("event") == "tool_call" and r.get("user") == "mallory", len(TOOLS)
    )
    audited = {record["tool"]: record for record in records}
    for spec in TOOLS:
        record = audited.get(spec.name)
        assert record is not None, f"{spec.name} left no audit record"
        outcome = outcomes[spec.name]
        if spec.action is None or spec.filtered:
            # Nothing to protect by path: it runs, and listings are filtered down to nothing here.
            assert record["decision"] == "allow", spec.name
            assert not outcome["is_error"], (spec.name, outcome)
        elif spec.name == "merge_document_fork":
            # An unknown fork id cannot be resolved to a document, so nothing runs either.
            assert outcome["is_error"] and outcome["body"]["error"]["code"] in ("not_found", "forbidden")
        else:
            assert outcome["is_error"], spec.name
            assert outcome["body"]["error"]["code"] == "forbidden", (spec.name, outcome)
            assert record["decision"] == "deny" and record["outcome"] == "denied", spec.name


@pytest.mark.parametrize("spec", TOOLS, ids=lambda spec: spec.name)
async def test_a_tool_reached_around_the_chain_refuses(spec: Any) -> None:
    tool = guarded(tool_function(spec))
    arguments = arguments_for(spec.name, "json:notebook:x")
    refused = await tool(**arguments)
    assert refused.is_error and refused.structured_content["error"]["code"] == "forbidden"
    # Even with a context for another tool, or one the chain did not allow, it refuses.
    principal = Principal(user="owner", auth=AuthMethod.OWNER_TOKEN, realm="jupyter", is_owner=True)
    for context in (
        CallContext(principal=principal, tool="some_other_tool", arguments={}, request_id="r", decision="allow"),
        CallContext(principal=principal, tool=spec.name, arguments={}, request_id="r", decision=None),
    ):
        reset = current_call.set(context)
        try:
            refused = await tool(**arguments)
        finally:
            current_call.reset(reset)
        assert refused.structured_content["error"]["code"] == "forbidden"
