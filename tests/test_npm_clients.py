"""Clients nobody here wrote, installed from npm: the TypeScript SDK 1.32 (handshake era) and @modelcontextprotocol/client 2.3
(2026-07-28 era), listing tools and calling one against a real server, and what each shows for a stale token.

scripts/run-tests.sh installs Node and runs `npm ci` in tests/js; run directly, the fixture runs `npm ci` itself.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from harness import JupyterServer

from jupyter_collab_mcp_secure.registry import TOOLS

JS = Path(__file__).parent / "js"
ERAS = {"v1": "2025-11-25", "v2": "2026-07-28"}


@pytest.fixture(scope="module")
def node() -> str:
    executable = shutil.which("node")
    assert executable, "Node.js is needed for the npm client tests: scripts/run-tests.sh installs it"
    if not (JS / "node_modules" / "@modelcontextprotocol").is_dir():
        npm = shutil.which("npm")
        assert npm, "npm is needed for the npm client tests: scripts/run-tests.sh installs it"
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=JS, check=True, capture_output=True, timeout=300)
    return executable


def run_client(node: str, sdk: str, server: JupyterServer, token: str) -> tuple[int, dict[str, Any]]:
    completed = subprocess.run(
        [node, "client.mjs", sdk, server.mcp_url, "notebooks/demo.ipynb"],
        cwd=JS,
        env={**os.environ, "MCP_TOKEN": token},
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = completed.stdout.strip().splitlines()
    assert lines, completed.stderr
    return completed.returncode, json.loads(lines[-1])


@pytest.mark.parametrize("sdk", ["v1", "v2"])
def test_npm_client_lists_and_calls_tools(node: str, server: JupyterServer, sdk: str) -> None:
    code, seen = run_client(node, sdk, server, server.token)
    assert code == 0, seen
    assert seen["protocolVersion"] == ERAS[sdk]
    # Only the handshake era has sessions.
    assert (seen["sessionId"] is not None) is (sdk == "v1")
    assert seen["server"]["name"] == "jupyter-collab-mcp-secure" and seen["server"]["version"]
    assert sorted(tool["name"] for tool in seen["tools"]) == sorted(spec.name for spec in TOOLS)
    by_name = {tool["name"]: tool for tool in seen["tools"]}
    assert by_name["delete_notebook_cell"]["annotations"]["destructiveHint"] is True
    assert by_name["get_notebook"]["title"] == "Read a notebook"
    called = seen["called"]
    assert not called["isError"]
    assert [cell["source"] for cell in called["structuredContent"]["cells"]] == ["x = 21", "print(x * 2)", "# Notes"]
    assert seen["refused"] == {
        "isError": True,
        "structuredContent": {
            "error": {
                "code": "invalid_argument",
                "message": "unexpected argument 'cell'; this tool takes fork_id, include_collaboration_state, path",
            }
        },
    }


@pytest.mark.parametrize("sdk", ["v1", "v2"])
def test_npm_client_with_a_stale_token_is_told_about_the_token(node: str, server: JupyterServer, sdk: str) -> None:
    code, seen = run_client(node, sdk, server, "token-from-yesterdays-demo")
    assert code == 1
    # 1.32 prints the 401's body in its message; 2.3 says "requires authorization (HTTP 401)" and carries the body.
    shown = seen["error"] if sdk == "v1" else seen["body"]
    assert "token not accepted" in shown, seen
    assert "Authorization: Bearer <token>" in shown, seen
