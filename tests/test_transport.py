"""The endpoint on the Jupyter port: both protocol eras, base_url, Host/Origin, limits, lifecycle."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from harness import LEGACY, MODERN, JupyterServer, call, mcp_client
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application

from jupyter_collab_mcp_secure.registry import TOOLS
from jupyter_collab_mcp_secure.transport.handlers import MCPHandler

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}},
}


@pytest.mark.parametrize("mode", [MODERN, LEGACY])
async def test_both_protocol_eras_list_and_call_tools(server: JupyterServer, mode: str) -> None:
    async with mcp_client(server, mode=mode) as client:
        listed = await client.list_tools()
        assert sorted(tool.name for tool in listed.tools) == sorted(spec.name for spec in TOOLS)
        notebook = await call(client, "get_notebook", path="notebooks/demo.ipynb")
    assert [cell["source"] for cell in notebook["cells"]] == ["x = 21", "print(x * 2)", "# Notes"]


async def test_legacy_era_uses_a_session_bound_to_its_principal(server: JupyterServer) -> None:
    headers = {**server.headers(), "Accept": "application/json, text/event-stream"}
    async with httpx.AsyncClient(timeout=30) as http:
        opened = await http.post(server.mcp_url, headers=headers, json=INITIALIZE)
        assert opened.status_code == 200
        session_id = opened.headers["mcp-session-id"]
        assert "text/event-stream" in opened.headers["content-type"]
        # The session id alone is no credential: without the token the request never reaches the session.
        stolen = await http.post(
            server.mcp_url,
            headers={"Mcp-Session-Id": session_id, "Accept": headers["Accept"]},
            json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        )
        assert stolen.status_code == 401
        closed = await http.delete(server.mcp_url, headers={**headers, "Mcp-Session-Id": session_id})
        assert closed.status_code in (200, 204)


async def test_base_url_prefix(server_factory) -> None:
    hub_like = server_factory("prefixed", base_url="/user/alice/")
    async with mcp_client(hub_like) as client:
        listed = await call(client, "list_notebooks")
    assert [entry["path"] for entry in listed["notebooks"]] == ["notebooks/demo.ipynb"]
    refused = httpx.post(hub_like.mcp_url, json={})
    challenge = refused.headers["www-authenticate"]
    metadata_url = challenge.split('resource_metadata="')[1].split('"')[0]
    assert metadata_url == hub_like.url + ".well-known/oauth-protected-resource/mcp"
    metadata = httpx.get(metadata_url).json()
    assert metadata["resource"] == hub_like.mcp_url
    # Nothing here issues tokens: no authorization server is named, least of all this server or "/hub/".
    assert "authorization_servers" not in metadata
    assert httpx.post(hub_like.url.replace("/user/alice/", "/") + "mcp", headers=hub_like.headers()).status_code == 404


async def test_mcp_activity_updates_last_activity(server: JupyterServer) -> None:
    before = server.api("GET", "api/status").json()["last_activity"]
    await asyncio.sleep(0.05)
    async with mcp_client(server) as client:
        await call(client, "list_notebooks")
    after = server.api("GET", "api/status").json()["last_activity"]
    assert after > before


def test_no_login_cookie_and_no_wildcard_cors(server: JupyterServer) -> None:
    response = httpx.post(
        server.mcp_url,
        headers={**server.headers(), "Accept": "application/json, text/event-stream"},
        json=INITIALIZE,
    )
    assert response.status_code == 200
    assert "set-cookie" not in response.headers
    assert response.headers.get("access-control-allow-origin") is None


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Origin": "http://evil.example"}, 403),
        ({"Host": "evil.example"}, 403),
    ],
)
def test_foreign_origin_and_host_are_refused(server: JupyterServer, headers: dict[str, str], status: int) -> None:
    response = httpx.post(server.mcp_url, headers={**server.headers(), **headers}, json=INITIALIZE)
    assert response.status_code == status
    assert response.headers.get("access-control-allow-origin") is None


def test_own_origin_is_allowed(server: JupyterServer) -> None:
    own = f"http://127.0.0.1:{server.port}"
    response = httpx.post(
        server.mcp_url,
        headers={**server.headers(), "Origin": own, "Accept": "application/json, text/event-stream"},
        json=INITIALIZE,
    )
    assert response.status_code == 200


def test_listed_origin_gets_its_own_cors_header(server_factory) -> None:
    allowing = server_factory("cors", config={"CollabMCP": {"allowed_origins": ["https://lab.example"]}})
    response = httpx.options(allowing.mcp_url, headers={"Origin": "https://lab.example"})
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "https://lab.example"


def test_oversized_body_gets_413(server: JupyterServer) -> None:
    body = json.dumps({**INITIALIZE, "padding": "x" * (5 * 1024 * 1024)})
    response = httpx.post(
        server.mcp_url,
        headers={
            **server.headers(),
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
        },
        content=body,
        timeout=30,
    )
    assert response.status_code == 413


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[]", b'{"jsonrpc": "2.0"}', b'{"jsonrpc": "2.0", "id": 1, "method": 5}', b"[" * 100_000],
)
def test_malformed_json_rpc_is_a_client_error(server: JupyterServer, body: bytes) -> None:
    response = httpx.post(
        server.mcp_url,
        headers={
            **server.headers(),
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": MODERN,
        },
        content=body,
    )
    assert 400 <= response.status_code < 500


class _NotRunning:
    ready = False


class _FakeCollab:
    runner = _NotRunning()
    allowed_origins: list[str] = []
    allowed_hosts: list[str] = []


async def test_endpoint_answers_503_until_the_session_manager_runs() -> None:
    app = Application([(r"/mcp", MCPHandler, {"collab": _FakeCollab()})], base_url="/")
    http_server = HTTPServer(app)
    [sock] = bind_sockets(0, "127.0.0.1")
    http_server.add_sockets([sock])
    port = sock.getsockname()[1]
    try:
        async with httpx.AsyncClient() as http:
            response = await http.post(f"http://127.0.0.1:{port}/mcp", json=INITIALIZE)
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
    finally:
        http_server.stop()


async def test_shuts_down_cleanly_with_open_sessions(server_factory) -> None:
    stopping = server_factory("shutdown")
    async with mcp_client(stopping, mode=LEGACY) as client:
        await call(client, "get_notebook", path="notebooks/demo.ipynb")
        stopping.stop()
        assert stopping.proc.returncode == 0
    log = stopping.log_text()
    assert "MCP session manager did not stop cleanly" not in log
    assert "jupyter_collab_mcp_secure" not in "".join(
        block for block in log.split("Traceback (most recent call last):")[1:]
    )


async def test_sse_events_leave_one_by_one(server: JupyterServer, tmp_path) -> None:
    """A progress event must reach the client while the call still runs: the cell waits for the client's reaction."""
    from harness import write_notebook

    flag = tmp_path / "progress-seen"
    path = f"transport/sse-{tmp_path.name}.ipynb"
    write_notebook(
        server.root / path,
        [
            f"import os, time\nprint('waiting', flush=True)\nwhile not os.path.exists({str(flag)!r}):\n    time.sleep(0.05)\nprint('released')"
        ],
    )

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        flag.touch()

    async with mcp_client(server, mode=LEGACY) as client:
        cell_id = (await call(client, "get_notebook", path=path))["cells"][0]["id"]
        result = await client.call_tool(
            "execute_notebook_cell", {"path": path, "cell_id": cell_id, "timeout": 60}, progress_callback=on_progress
        )
    assert not result.is_error, result.structured_content
    texts = "".join(output.get("text", "") for output in result.structured_content["outputs"])
    assert texts == "waiting\nreleased\n"


def test_allowed_hosts_hold_even_with_remote_access(server_factory) -> None:
    exposed = server_factory(
        "hosts",
        config={"ServerApp": {"allow_remote_access": True}, "CollabMCP": {"allowed_hosts": ["lab.example"]}},
    )
    headers = {**exposed.headers(), "Accept": "application/json, text/event-stream"}
    assert httpx.post(exposed.mcp_url, headers={**headers, "Host": "evil.example"}, json=INITIALIZE).status_code == 403
    rebound = {**headers, "Host": "evil.example", "Origin": "http://evil.example"}
    assert httpx.post(exposed.mcp_url, headers=rebound, json=INITIALIZE).status_code == 403
    named = {**headers, "Host": f"lab.example:{exposed.port}"}
    assert httpx.post(exposed.mcp_url, headers=named, json=INITIALIZE).status_code == 200
    assert httpx.post(exposed.mcp_url, headers=headers, json=INITIALIZE).status_code == 200


def _open_legacy_session(server: JupyterServer) -> dict[str, str]:
    headers = {**server.headers(), "Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    opened = httpx.post(server.mcp_url, headers=headers, json=INITIALIZE)
    session = {**headers, "Mcp-Session-Id": opened.headers["mcp-session-id"], "MCP-Protocol-Version": "2025-11-25"}
    initialized = httpx.post(
        server.mcp_url, headers=session, json={"jsonrpc": "2.0", "method": "notifications/initialized"}
    )
    assert initialized.status_code == 202
    return session


@pytest.mark.parametrize("request_id", [b'{"a": 1}', b"NaN", b"1e400", b"1.5", b"true", b"null"])
@pytest.mark.parametrize("era", ["session", MODERN])
def test_unanswerable_request_ids_get_an_error_not_silence(server: JupyterServer, era: str, request_id: bytes) -> None:
    if era == "session":
        headers = _open_legacy_session(server)
        params = b"{}"
    else:
        headers = {**server.headers(), "Accept": "application/json, text/event-stream", "MCP-Protocol-Version": MODERN}
        headers.update({"Content-Type": "application/json", "Mcp-Method": "tools/list"})
        meta = {
            "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
            "io.modelcontextprotocol/protocolVersion": MODERN,
            "io.modelcontextprotocol/clientCapabilities": {},
        }
        params = json.dumps({"_meta": meta}).encode()
    body = b'{"jsonrpc": "2.0", "id": ' + request_id + b', "method": "tools/list", "params": ' + params + b"}"
    response = httpx.post(server.mcp_url, headers=headers, content=body)
    assert response.status_code == 400
    answer = response.json()
    assert answer["error"]["code"] == -32600
    assert answer["id"] is None
    # A well-formed id on the same footing is answered, so the refusal is about the id alone.
    good = httpx.post(server.mcp_url, headers=headers, content=body.replace(request_id, b'"ok-1"', 1))
    assert good.status_code == 200
