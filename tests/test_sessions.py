"""The per-principal session cap: abandoned sessions never lock their owner out, busy ones are never evicted."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from awareness_fixtures import RawSession, jwt_config, token_for
from harness import LEGACY, JupyterServer, call, mcp_client, start_server

CAP = 4


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    workdir = tmp_path_factory.mktemp("sessions")
    config = jwt_config(workdir / "jwt", ["p, bob, **, read, allow", "p, carol, **, read, allow"])
    config["CollabMCP"]["max_sessions_per_principal"] = CAP
    running = start_server(workdir, config=config)
    yield running
    running.stop()


async def one_shot(server: JupyterServer, http: httpx.AsyncClient, token: str | None = None) -> str:
    """What the Inspector CLI does: initialize, one call, and leave without DELETE."""
    session = RawSession(server, http, token)
    await session.open()
    body = session.request("tools/call", {"name": "get_active_sessions", "arguments": {}})
    response = await http.post(server.mcp_url, json=body, headers=session.headers())
    assert response.status_code == 200 and '"isError":false' in response.text.replace(" ", ""), response.text
    assert session.session_id is not None
    return session.session_id


@contextlib.asynccontextmanager
async def listening(server: JupyterServer, http: httpx.AsyncClient, token: str) -> AsyncIterator[RawSession]:
    """A session whose client holds its GET stream open, as a connected client does: never idle."""
    session = RawSession(server, http, token)
    await session.open()
    async with http.stream("GET", server.mcp_url, headers=session.headers()) as stream:
        assert stream.status_code == 200
        yield session


async def initialize(server: JupyterServer, http: httpx.AsyncClient, token: str) -> httpx.Response:
    session = RawSession(server, http, token)
    body = session.request(
        "initialize", {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "x", "version": "1"}}
    )
    return await http.post(server.mcp_url, json=body, headers=session.headers())


async def test_fifty_abandoned_sessions_never_lock_their_owner_out(capped: JupyterServer) -> None:
    bob = token_for("bob", "bob-agent")
    async with (
        httpx.AsyncClient(timeout=30) as http,
        mcp_client(capped, mode=LEGACY, client_name="long-lived") as owner_client,
        mcp_client(capped, bob, mode=LEGACY, client_name="bob-long-lived") as bob_client,
    ):
        await call(owner_client, "get_active_sessions")
        first = await one_shot(capped, http)
        for _ in range(49):
            await one_shot(capped, http)
        # The 51st client of the same principal gets in, and so does another principal.
        async with mcp_client(capped, mode=LEGACY, client_name="fifty-first") as fifty_first:
            assert "sessions" in await call(fifty_first, "get_active_sessions")
        await one_shot(capped, http, bob)
        # Connected clients hold their GET stream: their sessions were never the ones closed.
        assert "sessions" in await call(owner_client, "get_active_sessions")
        assert "sessions" in await call(bob_client, "get_active_sessions")
        # The oldest abandoned session was closed, not kept: its id is unknown now.
        evicted = RawSession(capped, http)
        evicted.session_id = first
        gone = await http.post(capped.mcp_url, json=evicted.request("tools/list", {}), headers=evicted.headers())
        assert gone.status_code == 404
    assert f"({CAP} of {CAP} held)" in capped.log_text()
    assert "sessions are already open" not in capped.log_text()


async def test_busy_sessions_are_never_evicted_and_the_refusal_gives_the_real_numbers(capped: JupyterServer) -> None:
    carol = token_for("carol", "carol-agent")
    async with httpx.AsyncClient(timeout=30) as http, contextlib.AsyncExitStack() as streams:
        sessions = [await streams.enter_async_context(listening(capped, http, carol)) for _ in range(CAP)]
        refused = await initialize(capped, http, carol)
        assert refused.status_code == 503
        assert f"all {CAP} of this principal's sessions" in refused.json()["error"]["message"]
        assert f"holds {CAP} sessions (the per-principal cap is {CAP}), all busy" in capped.log_text()
        # The busy sessions still work.
        listed = await http.post(
            capped.mcp_url, json=sessions[0].request("tools/list", {}), headers=sessions[0].headers()
        )
        assert listed.status_code == 200
        # Another principal is not affected by carol's full budget.
        assert (await initialize(capped, http, token_for("bob", "bob-agent"))).status_code == 200
    # Streams closed: carol's sessions are idle now, and a new one is admitted (the server sees the close soon).
    async with httpx.AsyncClient(timeout=30) as http:
        assert await admitted_eventually(capped, http, carol)


async def admitted_eventually(server: JupyterServer, http: httpx.AsyncClient, token: str) -> bool:
    deadline = asyncio.get_running_loop().time() + 10
    while asyncio.get_running_loop().time() < deadline:
        response = await initialize(server, http, token)
        if response.status_code == 200:
            return True
        assert response.status_code == 503, response.text
        await asyncio.sleep(0.05)
    return False
