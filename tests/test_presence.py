"""An agent is one collaborator whatever its client does, leaves when it is done, and cannot be impersonated."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from awareness_fixtures import RawSession, agent_named, agent_states, user_state
from harness import LEGACY, Collaborator, JupyterServer, call, eventually, mcp_client, start_server
from pycrdt import Awareness, Encoder, create_awareness_message

from jupyter_collab_mcp_secure.rtc.peers import MAX_AGENTS_PER_PRINCIPAL


@pytest.fixture(scope="module")
def quick_idle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    """Agents idle out after 6 s here: short enough to watch, long enough between calls on a busy machine."""
    workdir = tmp_path_factory.mktemp("presence")
    running = start_server(workdir, config={"CollabMCP": {"agent_idle_timeout": 6.0}})
    yield running
    running.stop()


def new_text(server: JupyterServer, path: str, content: str = "text\n") -> str:
    file = server.root / path
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(content)
    return path


class AgentWatch:
    """Every agent client id a collaborator ever saw, the most it saw at once, and how often each was updated."""

    def __init__(self, awareness: Awareness) -> None:
        self.awareness = awareness
        self.seen: set[int] = set()
        self.most = 0
        self.updates: Counter[int] = Counter()
        awareness.observe(self._on_update)

    def _on_update(self, topic: str, payload: Any) -> None:
        if topic != "update":
            return
        changes = payload[0]
        agents = agent_states(self.awareness)
        self.seen.update(agents)
        self.most = max(self.most, len(agents))
        for client_id in changes["added"] + changes["updated"]:
            if client_id in agents:
                self.updates[client_id] += 1


async def test_ten_one_shot_clients_of_one_agent_are_one_peer_that_leaves_soon_after(server: JupyterServer) -> None:
    path = new_text(server, "presence/one-shot.txt", "abc\nde\n")
    async with Collaborator.join(server, path, "file") as lab:
        watch = AgentWatch(lab.awareness)
        for number in range(10):
            # Each run opens its own MCP session (handshake era), makes one call and ends.
            async with mcp_client(server, mode=LEGACY, client_name="one-shot-agent") as client:
                await call(
                    client, "update_cursor_position", document_path=path, position={"line": 0, "column": number % 3}
                )
            await lab.wait_for(lambda: agent_named(lab.awareness, "one-shot-agent") is not None)
        assert len(watch.seen) == 1 and watch.most == 1
        # Its last session ended: it leaves within seconds, long before the idle timeout (120 s here).
        await lab.wait_for(lambda: not agent_states(lab.awareness), timeout=15)


async def test_per_request_calls_and_abandoned_sessions_are_one_peer_until_the_idle_timeout(
    quick_idle: JupyterServer,
) -> None:
    path = new_text(quick_idle, "presence/modern.txt")
    async with Collaborator.join(quick_idle, path, "file") as lab, httpx.AsyncClient(timeout=30) as http:
        watch = AgentWatch(lab.awareness)
        # The same agent name through the 2026-07-28 era and through sessions a one-shot client never ends.
        abandoned = []
        for number in range(10):
            if number % 3 == 0:
                session = RawSession(quick_idle, http)
                await session.open()
                body = session.request("tools/call", {"name": "join_session", "arguments": {"session_id": lab.room_id}})
                response = await http.post(quick_idle.mcp_url, json=body, headers=session.headers())
                assert response.status_code == 200 and '"joined":true' in response.text.replace(" ", "")
                abandoned.append(session)
            else:
                async with mcp_client(quick_idle, client_name="raw-resumer") as client:
                    await call(client, "join_session", session_id=lab.room_id)
        await lab.wait_for(lambda: agent_named(lab.awareness, "raw-resumer") is not None)
        assert len(watch.seen) == 1 and watch.most == 1
        await lab.wait_for(lambda: not agent_states(lab.awareness), timeout=20)
        # It left on the idle timeout while its sessions are still open.
        still_open = abandoned[0]
        listed = await http.post(
            quick_idle.mcp_url, json=still_open.request("tools/list", {}), headers=still_open.headers()
        )
        assert listed.status_code == 200


def forged_update(client_id: int, clock: int, state: dict[str, Any]) -> bytes:
    encoder = Encoder()
    encoder.write_var_uint(1)
    encoder.write_var_uint(client_id)
    encoder.write_var_uint(clock)
    encoder.write_var_string(json.dumps(state))
    return create_awareness_message(encoder.to_bytes())


async def test_a_participant_cannot_forge_the_agent_peer(server: JupyterServer) -> None:
    path = new_text(server, "presence/forged.txt")
    async with (
        Collaborator.join(server, path, "file") as lab,
        Collaborator.join(server, path, "file") as mallory,
        mcp_client(server, client_name="honest-agent") as client,
    ):
        joined = await call(client, "join_session", session_id=lab.room_id)
        agent_id = joined["client_id"]
        await lab.wait_for(lambda: agent_id in lab.awareness.states)
        genuine = lab.awareness.states[agent_id]
        forged_clock = 1_000_000_000
        forged = {
            "user": {**genuine["user"], "name": "evil", "display_name": "forged for owner"},
            "agent": genuine["agent"],
            "presence": {"status": "offline", "message": "forged"},
        }
        await mallory.websocket.send(forged_update(agent_id, forged_clock, forged))
        # The peer outbids the forged clock with its own state: every collaborator ends on the genuine one.
        await lab.wait_for(
            lambda: (
                lab.awareness.meta.get(agent_id, {}).get("clock", 0) > forged_clock
                and lab.awareness.states.get(agent_id, {}).get("user", {}).get("name") == "honest-agent"
            )
        )
        # The tools never report the forgery, even while a room holds it.
        await mallory.websocket.send(forged_update(agent_id, forged_clock * 2, forged))
        sessions = await call(client, "get_active_sessions", document_path=path)
        participant = next(p for p in sessions["sessions"][0]["participants"] if p["client_id"] == agent_id)
        assert participant["verified"] and participant["display_name"] == "honest-agent (self-declared) for owner"
        presence = await call(client, "get_user_presence", user_id=genuine["user"]["username"])
        assert presence["message"] != "forged" and presence["status"] == "online"
        # And the real agent's next update wins.
        await call(client, "set_user_presence", status="busy", message="still me")
        await lab.wait_for(
            lambda: lab.awareness.states.get(agent_id, {}).get("presence", {}).get("message") == "still me"
        )


async def test_self_declared_agents_are_capped_and_joining_costs_one_update(server: JupyterServer) -> None:
    path = new_text(server, "presence/swarm.txt")
    swarm = MAX_AGENTS_PER_PRINCIPAL + 4
    async with Collaborator.join(server, path, "file") as lab:
        watch = AgentWatch(lab.awareness)
        for number in range(swarm):
            # The 2026-07-28 era: every request may name another client.
            async with mcp_client(server, client_name=f"swarm-{number}") as client:
                await call(client, "join_session", session_id=lab.room_id)
        last = f"swarm-{swarm - 1}"
        await lab.wait_for(
            lambda: (
                agent_named(lab.awareness, last) is not None
                and len(agent_states(lab.awareness)) <= MAX_AGENTS_PER_PRINCIPAL
            )
        )
        assert len(agent_states(lab.awareness)) == MAX_AGENTS_PER_PRINCIPAL
        assert len(watch.seen) == swarm
        # Each agent published when it joined (and maybe once more on the 10 s renewal), not again for every
        # later agent: re-publishing between agents is what made joins quadratic.
        assert max(watch.updates.values()) <= 3, watch.updates


async def test_jupyterlab_sees_a_short_cursor_name_and_the_full_line_in_the_panel(server: JupyterServer) -> None:
    path = new_text(server, "presence/names.txt")
    async with (
        Collaborator.join(server, path, "file") as lab,
        mcp_client(server, client_name="a-very-long-agent-client-name") as client,
    ):
        await call(client, "join_session", session_id=lab.room_id)
        await call(client, "set_user_presence", status="busy", message="reviewing")
        await call(client, "broadcast_user_activity", activity_type="review", description="checking totals")

        def user() -> dict[str, Any]:
            return (agent_named(lab.awareness, "a-very-long") or {}).get("user", {})

        await lab.wait_for(lambda: "checking totals" in user().get("display_name", ""))
        assert user()["name"] == "a-very-long-agent-c…" and len(user()["name"]) <= 20
        assert user()["display_name"] == (
            "a-very-long-agent-client-name (self-declared) for owner · busy: reviewing · checking totals"
        )
        await lab.set_awareness(user_state("ada", "Ada Lovelace"))
        online = await eventually(
            lambda: call(client, "get_online_users", document_path=path), lambda o: o["count"] >= 2
        )
        agent = next(u for u in online["users"] if u["is_agent"])
        assert agent["display_name"] == "a-very-long-agent-client-name (self-declared) for owner"
        assert (online["people"], online["agents"]) == (1, 1)
        session = (await call(client, "get_active_sessions", document_path=path))["sessions"][0]
        assert (session["people_count"], session["agent_count"]) == (1, 1)


async def test_colours_are_values_a_client_can_draw(server: JupyterServer) -> None:
    path = new_text(server, "presence/colours.txt")
    async with (
        Collaborator.join(server, path, "file") as ada,
        Collaborator.join(server, path, "file") as grace,
        Collaborator.join(server, path, "file") as eve,
        mcp_client(server) as client,
    ):
        await ada.set_awareness(user_state("ada", "Ada"))  # JupyterLab's var(--jp-collaborator-color1)
        grace_state = user_state("grace", "Grace")
        grace_state["user"]["color"] = "#1F77B4"
        await grace.set_awareness(grace_state)
        eve_state = user_state("eve", "Eve")
        eve_state["user"]["color"] = "url(javascript:alert(1))"
        await eve.set_awareness(eve_state)
        users = {
            u["user_id"]: u
            for u in (
                await eventually(
                    lambda: call(client, "get_online_users", document_path=path), lambda o: o["count"] >= 3
                )
            )["users"]
        }
        assert users["ada"]["color"] == "#ffad8e"
        assert users["grace"]["color"] == "#1f77b4"
        assert users["eve"]["color"] is None


async def test_listings_count_people_and_agents_apart(server: JupyterServer) -> None:
    path = new_text(server, "presence/counted.txt")
    async with (
        Collaborator.join(server, path, "file") as lab,
        mcp_client(server, client_name="counted-agent") as client,
    ):
        await lab.set_awareness(user_state("ada", "Ada Lovelace"))
        await call(client, "join_session", session_id=lab.room_id)
        await lab.wait_for(lambda: agent_named(lab.awareness, "counted-agent") is not None)
        listed = await call(client, "list_documents", path="presence")
        entry = next(document for document in listed["documents"] if document["path"] == path)
        assert (entry["collaborators"], entry["people"], entry["agents"]) == (2, 1, 1)
