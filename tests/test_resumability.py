"""Resumable SSE streams through the real server: cut a call's stream, resume it with Last-Event-ID."""

from __future__ import annotations

import httpx
from awareness_fixtures import RawSession, jwt_config, token_for
from harness import LEGACY, call, mcp_client


async def test_a_cut_stream_resumes_with_the_rest_of_the_call(server):
    async with httpx.AsyncClient(timeout=30) as http:
        session = RawSession(server, http)
        await session.open()
        request_id, priming = await session.call_and_cut("get_active_sessions", {})
        replayed = await session.resume(priming)
        results = [m for m in replayed if m.get("id") == request_id and "result" in m]
        assert len(results) == 1, replayed
        assert results[0]["result"]["structuredContent"]["count"] >= 0


async def test_another_sessions_event_id_replays_nothing(server):
    async with httpx.AsyncClient(timeout=30) as http:
        victim, other = RawSession(server, http), RawSession(server, http)
        await victim.open()
        await other.open()
        _, victim_priming = await victim.call_and_cut("get_user_activity", {"limit": 5})
        # Both sessions number their requests from 1, so their stream ids collide: the store must not.
        _, own_priming = await other.call_and_cut("get_user_activity", {"limit": 5})
        assert await other.resume(victim_priming) == []
        assert [m for m in await other.resume(own_priming) if "result" in m]
        assert [m for m in await victim.resume(victim_priming) if "result" in m]


async def test_another_principal_cannot_use_a_session_or_its_events(server_factory, tmp_path):
    own = server_factory("resume-principals", config=jwt_config(tmp_path / "jwt", ["p, bob, **, read, allow"]))
    async with httpx.AsyncClient(timeout=30) as http:
        alice = RawSession(own, http, token_for("alice", "a"))
        await alice.open()
        _, priming = await alice.call_and_cut("get_active_sessions", {})
        intruder = RawSession(own, http, token_for("bob", "b"))
        intruder.session_id = alice.session_id
        response = await http.get(own.mcp_url, headers=intruder.headers(**{"Last-Event-ID": priming}))
        assert response.status_code == 404


async def test_the_official_client_works_with_resumable_sessions(server):
    async with mcp_client(server, mode=LEGACY, client_name="legacy-resumer") as client:
        result = await call(client, "get_active_sessions")
        assert "sessions" in result
