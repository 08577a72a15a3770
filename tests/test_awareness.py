"""Awareness tools through the real server, against websocket collaborators that act like JupyterLab."""

from __future__ import annotations

import asyncio
from typing import Any

from awareness_fixtures import (
    GlobalAwarenessPeer,
    agent_named,
    agent_states,
    jwt_config,
    token_for,
    user_state,
)
from harness import LEGACY, Collaborator, call, call_error, eventually, mcp_client, write_notebook
from pycrdt import Array, Assoc, StickyIndex, Text


def new_text(server, path: str, content: str) -> str:
    file = server.root / path
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(content)
    return path


def new_notebook(server, path: str, sources: list[str]) -> str:
    write_notebook(server.root / path, sources)
    return path


def yjs_position(ytext: Text, index: int) -> dict[str, Any]:
    """What JupyterLab stores for character `index`: Y.createRelativePositionFromTypeIndex(ytext, units), assoc 0."""
    source = str(ytext)
    units = len(source[:index].encode("utf-16-le")) // 2
    if units < len(source.encode("utf-16-le")) // 2:
        raw = ytext.sticky_index(units, Assoc.AFTER).to_json()
    else:  # past the last character: the text itself, no item
        raw = {k: v for k, v in ytext.sticky_index(0, Assoc.BEFORE).to_json().items() if k in ("type", "tname")}
    return {"type": raw.get("type"), "tname": raw.get("tname"), "item": raw.get("item"), "assoc": 0}


def lab_cursor(ytext: Text, head: int, anchor: int | None = None) -> dict[str, Any]:
    anchor = head if anchor is None else anchor
    return {
        "anchor": yjs_position(ytext, anchor),
        "head": yjs_position(ytext, head),
        "primary": True,
        "empty": anchor == head,
    }


def character_index(ytext: Text, position: dict[str, Any]) -> int:
    """Where a relative position written by the agent lands in a collaborator's copy (characters)."""
    assert set(position) == {"type", "tname", "item", "assoc"}, "JupyterLab needs every key, null or not"
    clean = {k: v for k, v in position.items() if v is not None}
    units = StickyIndex.from_json(clean, ytext).get_index()
    source = str(ytext)
    return len(source.encode("utf-16-le")[: units * 2].decode("utf-16-le"))


def in_text(ytext: Text, position: dict[str, Any]) -> bool:
    """True when the position belongs to this text (what JupyterLab checks before drawing a cursor)."""
    if position["item"] is None:
        scope = ytext.sticky_index(0, Assoc.BEFORE).to_json()
        return scope.get("type") == position["type"] and scope.get("tname") == position["tname"]
    units = StickyIndex.from_json({"item": position["item"], "assoc": position["assoc"]}, ytext).get_index()
    assoc = Assoc.AFTER if position["assoc"] >= 0 else Assoc.BEFORE
    length = len(str(ytext).encode("utf-16-le")) // 2
    if not (units < length if assoc == Assoc.AFTER else 1 <= units <= length):
        return False  # the offset belongs to another, longer text
    return ytext.sticky_index(units, assoc).to_json().get("item") == position["item"]


def cell_text(lab: Collaborator, number: int) -> Text:
    return lab.doc.get("cells", type=Array)[number]["source"]


def by_user(users: list[dict[str, Any]], user_id: str) -> dict[str, Any] | None:
    return next((user for user in users if user["user_id"] == user_id), None)


# --- who is online ---------------------------------------------------------------------------


async def test_people_in_jupyterlab_are_listed_with_display_name_documents_and_kind(server):
    path = new_text(server, "online/people.txt", "hello\n")
    async with (
        Collaborator.join(server, path, "file") as lab,
        GlobalAwarenessPeer.join(server) as lab_shell,
        mcp_client(server) as client,
    ):
        await lab.set_awareness(user_state("ada", "Ada Lovelace"))
        await lab_shell.set_awareness(
            user_state("ada", "Ada Lovelace", current=f"editor:{path}", documents=[path, "notebooks/demo.ipynb"])
        )
        result = await eventually(
            lambda: call(client, "get_online_users"),
            lambda r: (u := by_user(r["users"], "ada")) is not None and "notebooks/demo.ipynb" in u["documents"],
        )
        ada = by_user(result["users"], "ada")
        assert ada["display_name"] == "Ada Lovelace"
        assert ada["kind"] == "person" and ada["is_agent"] is False and ada["verified"] is False
        assert set(ada["documents"]) == {path, "notebooks/demo.ipynb"}
        assert ada["current_document"] == path
        assert result["content_trust"]["untrusted_content"] is True

        in_document = await call(client, "get_online_users", document_path=path)
        assert by_user(in_document["users"], "ada") is not None
        elsewhere = await call(client, "get_online_users", document_path="notes.txt")
        assert by_user(elsewhere["users"], "ada") is None


# --- cursors ----------------------------------------------------------------------------------


async def test_cursors_set_in_jupyterlab_read_as_line_and_column_including_end_of_text(server):
    path = new_text(server, "cursors/read.txt", "first line\nsecönd 😀 line")
    empty = new_text(server, "cursors/empty.txt", "")
    async with (
        Collaborator.join(server, path, "file") as lab,
        Collaborator.join(server, empty, "file") as lab_empty,
        mcp_client(server) as client,
    ):
        source = lab.doc.get("source", type=Text)
        text = str(source)
        selection_start = text.index("😀")
        end = len(text)
        await lab.set_awareness(
            user_state("grace", "Grace Hopper", cursors=[lab_cursor(source, end, anchor=selection_start)])
        )
        await lab_empty.set_awareness(
            user_state("linus", "Linus", cursors=[lab_cursor(lab_empty.doc.get("source", type=Text), 0)])
        )
        result = await eventually(
            lambda: call(client, "get_user_cursors", document_path=path), lambda r: by_user(r["users"], "grace")
        )
        cursor = by_user(result["users"], "grace")["cursors"][0]
        assert cursor["position"] == {"line": 1, "column": len("secönd 😀 line")}
        assert cursor["selection"] == {
            "start": {"line": 1, "column": len("secönd ")},
            "end": {"line": 1, "column": len("secönd 😀 line")},
        }
        at_empty = await eventually(
            lambda: call(client, "get_user_cursors", document_path=empty), lambda r: by_user(r["users"], "linus")
        )
        assert by_user(at_empty["users"], "linus")["cursors"][0] == {
            "position": {"line": 0, "column": 0},
            "selection": None,
            "primary": True,
        }


async def test_cursors_in_notebooks_name_the_cell(server):
    path = new_notebook(server, "cursors/read.ipynb", ["a = 1\nb = 2", "", "# last"])
    async with Collaborator.join(server, path) as lab, mcp_client(server) as client:
        cells = lab.doc.get("cells", type=Array)
        ids = [cell["id"] for cell in cells]
        await lab.set_awareness(
            user_state(
                "katherine",
                "Katherine Johnson",
                cursors=[lab_cursor(cell_text(lab, 0), 8), lab_cursor(cell_text(lab, 1), 0)],
            )
        )
        result = await eventually(
            lambda: call(client, "get_user_cursors", document_path=path), lambda r: by_user(r["users"], "katherine")
        )
        positions = [c["position"] for c in by_user(result["users"], "katherine")["cursors"]]
        assert positions == [{"line": 1, "column": 2, "cell_id": ids[0]}, {"line": 0, "column": 0, "cell_id": ids[1]}]


async def test_agent_cursor_lands_where_jupyterlab_draws_it(server):
    path = new_text(server, "cursors/write.txt", "héllo\nwörld 😀!")
    empty = new_text(server, "cursors/write-empty.txt", "")
    async with (
        Collaborator.join(server, path, "file") as lab,
        Collaborator.join(server, empty, "file") as lab_empty,
        mcp_client(server, client_name="cursor-agent") as client,
    ):
        source = lab.doc.get("source", type=Text)
        moved = await call(
            client,
            "update_cursor_position",
            document_path=path,
            position={"line": 1, "column": 6},
            selection={"start": {"line": 0, "column": 1}, "end": {"line": 1, "column": 6}},
        )
        assert moved["session_id"].startswith("text:file:")

        def agent_cursor() -> dict[str, Any] | None:
            state = agent_named(lab.awareness, "cursor-agent")
            return state["cursors"][0] if state and state.get("cursors") else None

        await lab.wait_for(lambda: agent_cursor() is not None)
        cursor = agent_cursor()
        text = str(source)
        assert character_index(source, cursor["head"]) == text.index("😀")
        assert character_index(source, cursor["anchor"]) == 1
        assert cursor["empty"] is False

        await call(client, "update_cursor_position", document_path=path, position={"line": 1, "column": 8})
        await lab.wait_for(lambda: (c := agent_cursor()) is not None and c["empty"])
        assert character_index(source, agent_cursor()["head"]) == len(text)

        await call(client, "update_cursor_position", document_path=empty, position={"line": 0, "column": 0})
        empty_source = lab_empty.doc.get("source", type=Text)
        await lab_empty.wait_for(lambda: (s := agent_named(lab_empty.awareness, "cursor-agent")) and s.get("cursors"))
        head = agent_named(lab_empty.awareness, "cursor-agent")["cursors"][0]["head"]
        assert in_text(empty_source, head) and character_index(empty_source, head) == 0

        # JupyterLab types into the empty document: the agent's cursor stays a valid position.
        empty_source += "typed"
        await asyncio.sleep(0.2)
        assert character_index(empty_source, head) in (0, len("typed"))

        too_far = await call_error(
            client, "update_cursor_position", document_path=path, position={"line": 5, "column": 0}
        )
        assert too_far["code"] == "invalid_argument"
        past_line = await call_error(
            client, "update_cursor_position", document_path=path, position={"line": 0, "column": 6}
        )
        assert past_line["code"] == "invalid_argument"


async def test_agent_cursor_in_a_notebook_cell(server):
    path = new_notebook(server, "cursors/write.ipynb", ["first = 1", "", "third = 3\nmore"])
    async with Collaborator.join(server, path) as lab, mcp_client(server, client_name="nb-cursor-agent") as client:
        ids = [cell["id"] for cell in lab.doc.get("cells", type=Array)]
        await call(
            client, "update_cursor_position", document_path=path, cell_id=ids[2], position={"line": 1, "column": 4}
        )
        await lab.wait_for(lambda: (s := agent_named(lab.awareness, "nb-cursor-agent")) and s.get("cursors"))
        head = agent_named(lab.awareness, "nb-cursor-agent")["cursors"][0]["head"]
        assert in_text(cell_text(lab, 2), head) and not in_text(cell_text(lab, 0), head)
        assert character_index(cell_text(lab, 2), head) == len("third = 3\nmore")

        await call(
            client, "update_cursor_position", document_path=path, cell_id=ids[1], position={"line": 0, "column": 0}
        )
        await lab.wait_for(
            lambda: in_text(cell_text(lab, 1), agent_named(lab.awareness, "nb-cursor-agent")["cursors"][0]["head"])
        )

        missing_cell = await call_error(
            client, "update_cursor_position", document_path=path, position={"line": 0, "column": 0}
        )
        assert missing_cell["code"] == "invalid_argument"
        unknown = await call_error(
            client, "update_cursor_position", document_path=path, cell_id="nope", position={"line": 0, "column": 0}
        )
        assert unknown["code"] == "not_found"


async def test_agent_edit_puts_its_cursor_at_the_cell_it_edited(server):
    path = new_notebook(server, "cursors/edited.ipynb", ["x = 1", "y = 2"])
    async with Collaborator.join(server, path) as lab, mcp_client(server, client_name="editing-agent") as client:
        cell_id = lab.doc.get("cells", type=Array)[1]["id"]
        await call(client, "update_notebook_cell", path=path, cell_id=cell_id, content="y = 20")
        await lab.wait_for(lambda: (s := agent_named(lab.awareness, "editing-agent")) and s.get("cursors"))
        state = agent_named(lab.awareness, "editing-agent")
        # The server token carries no verified agent id: the client's own name is marked self-declared.
        assert state["user"]["display_name"].startswith("editing-agent (self-declared) for owner · online · ")
        assert state["user"]["name"] == "editing-agent"
        assert state["user"]["initials"] and state["user"]["color"]
        head = state["cursors"][0]["head"]
        assert in_text(cell_text(lab, 1), head)
        activity = await call(client, "get_user_activity", document_path=path)
        kinds = [(a["activity_type"], a["source"]) for a in activity["activities"]]
        assert ("edit", "mcp") in kinds


# --- presence ---------------------------------------------------------------------------------


async def test_presence_shows_in_awareness_for_every_collaborator_and_in_get_user_presence(server):
    path = new_text(server, "presence/doc.txt", "text\n")
    async with (
        GlobalAwarenessPeer.join(server) as lab_shell,
        Collaborator.join(server, path, "file") as lab,
        mcp_client(server, client_name="present-agent") as client,
    ):
        joined = await call(client, "join_session", session_id=lab.room_id)
        assert joined["joined"] is True
        result = await call(client, "set_user_presence", status="busy", message="reviewing the model")
        assert result["status"] == "busy"
        agent_id = result["user_id"]
        presence_of = lambda awareness: (agent_named(awareness, "present-agent") or {}).get("presence", {})
        await lab.wait_for(lambda: presence_of(lab.awareness).get("status") == "busy")
        await lab_shell.wait_for(lambda: presence_of(lab_shell.awareness).get("message") == "reviewing the model")
        shell_state = agent_named(lab_shell.awareness, "present-agent")
        assert path in shell_state["documents"] and shell_state["current"] == f"editor:{path}"

        seen = await call(client, "get_user_presence", user_id=agent_id, document_path=path)
        assert seen["online"] and seen["status"] == "busy" and seen["message"] == "reviewing the model"
        assert seen["in_document"] is True and seen["verified"] is True and seen["last_activity"]
        assert path in seen["documents"]

        await call(client, "set_user_presence", status="away")
        await lab.wait_for(lambda: presence_of(lab.awareness).get("status") == "away")

        wrong = await call_error(client, "set_user_presence", status="sleeping")
        assert wrong["code"] == "invalid_argument"
        nobody = await call(client, "get_user_presence", user_id="nobody-here")
        assert nobody["online"] is False and nobody["status"] == "offline"

        await lab.set_awareness(user_state("hedy", "Hedy Lamarr"))
        person = await eventually(lambda: call(client, "get_user_presence", user_id="hedy"), lambda r: r["online"])
        assert person["status"] == "online" and person["display_name"] == "Hedy Lamarr" and person["last_seen"]


# --- activity ---------------------------------------------------------------------------------


async def test_activity_feed_has_edits_broadcasts_and_collaboration_joins_marked_untrusted(server):
    path = new_text(server, "activity/doc.txt", "abc\n")
    async with mcp_client(server, client_name="busy-agent") as client:
        async with Collaborator.join(server, path, "file") as lab:
            await call(client, "insert_text", path=path, text="XYZ", position=0)
            sent = await call(
                client,
                "broadcast_user_activity",
                activity_type="review",
                description="Checking the totals in section 2",
                document_path=path,
                metadata={"section": 2},
            )
            assert sent["activity"]["activity_type"] == "review"
            await lab.wait_for(
                lambda: (
                    ((agent_named(lab.awareness, "busy-agent") or {}).get("activity") or {}).get("description")
                    == "Checking the totals in section 2"
                )
            )
        feed = await eventually(
            lambda: call(client, "get_user_activity", document_path=path, limit=50),
            lambda r: ("leave", "collaboration") in [(a["activity_type"], a["source"]) for a in r["activities"]],
        )
        kinds = [(a["activity_type"], a["source"]) for a in feed["activities"]]
        assert {("edit", "mcp"), ("review", "broadcast"), ("join", "collaboration"), ("leave", "collaboration")} <= set(
            kinds
        )
        assert feed["content_trust"]["untrusted_content"] is True
        broadcast = next(a for a in feed["activities"] if a["activity_type"] == "review")
        assert broadcast["metadata"] == {"section": 2} and broadcast["is_agent"] is True

        overall = await call(client, "get_user_activity", limit=3)
        assert overall["count"] == 3
        bad_limit = await call_error(client, "get_user_activity", limit=0)
        assert bad_limit["code"] == "invalid_argument"
        too_long = await call_error(client, "broadcast_user_activity", activity_type="x", description="y" * 5000)
        assert too_long["code"] == "invalid_argument"


# --- sessions ---------------------------------------------------------------------------------


async def test_sessions_join_and_leave(server):
    path = new_text(server, "sessions/doc.txt", "shared\n")
    async with (
        Collaborator.join(server, path, "file") as lab,
        mcp_client(server, client_name="joining-agent") as client,
    ):
        await lab.set_awareness(user_state("alan", "Alan Turing"))
        listed = await eventually(
            lambda: call(client, "get_active_sessions", document_path=path),
            lambda r: r["count"] == 1 and by_user(r["sessions"][0]["participants"], "alan"),
        )
        session = listed["sessions"][0]
        assert session["session_id"] == lab.room_id and session["document_path"] == path

        joined = await call(client, "join_session", session_id=lab.room_id)
        assert joined["joined"] and by_user(joined["participants"], "alan")
        assert any(p["verified"] and p["client_id"] == joined["client_id"] for p in joined["participants"])
        await lab.wait_for(lambda: agent_named(lab.awareness, "joining-agent") is not None)

        everything = await call(client, "get_active_sessions")
        assert lab.room_id in [s["session_id"] for s in everything["sessions"]]

        left = await call(client, "leave_session", session_id=lab.room_id)
        assert left["left"] is True
        await lab.wait_for(lambda: agent_named(lab.awareness, "joining-agent") is None)
        again = await call(client, "leave_session", session_id=lab.room_id)
        assert again["left"] is False
        bad = await call_error(client, "join_session", session_id="not-a-room")
        assert bad["code"] == "invalid_argument"


async def test_late_joiners_see_the_agent_at_once(server):
    path = new_text(server, "sessions/late.txt", "late\n")
    async with (
        mcp_client(server, client_name="early-agent") as client,
        Collaborator.join(server, path, "file") as first,
    ):
        await call(client, "join_session", session_id=first.room_id)
        async with Collaborator.join(server, path, "file") as late:
            # The awareness renewal comes only every 10 s: seeing it sooner proves the re-broadcast.
            await late.wait_for(lambda: agent_named(late.awareness, "early-agent") is not None, timeout=5)
        async with GlobalAwarenessPeer.join(server) as late_shell:
            await late_shell.set_awareness(user_state("margaret", "Margaret Hamilton"))
            await late_shell.wait_for(lambda: agent_named(late_shell.awareness, "early-agent") is not None, timeout=5)


async def test_several_agents_are_several_peers(server):
    path = new_text(server, "sessions/many.txt", "many\n")
    async with (
        Collaborator.join(server, path, "file") as lab,
        mcp_client(server, client_name="agent-one") as one,
        mcp_client(server, client_name="agent-two") as two,
    ):
        first = await call(one, "join_session", session_id=lab.room_id)
        second = await call(two, "join_session", session_id=lab.room_id)
        assert first["client_id"] != second["client_id"]
        await lab.wait_for(lambda: agent_named(lab.awareness, "agent-one") and agent_named(lab.awareness, "agent-two"))
        names = sorted(s["user"]["name"] for s in agent_states(lab.awareness).values())
        assert "agent-one" in names and "agent-two" in names
        await call(one, "leave_session", session_id=lab.room_id)
        await lab.wait_for(lambda: agent_named(lab.awareness, "agent-one") is None)
        assert agent_named(lab.awareness, "agent-two") is not None


async def test_agent_leaves_when_its_mcp_session_ends(server):
    path = new_text(server, "sessions/ending.txt", "ending\n")
    async with Collaborator.join(server, path, "file") as lab:
        async with mcp_client(server, mode=LEGACY, client_name="ending-agent") as client:
            await call(client, "join_session", session_id=lab.room_id)
            await lab.wait_for(lambda: agent_named(lab.awareness, "ending-agent") is not None)
        # Closing the client ends its MCP session (DELETE): the agent leaves seconds later, not after a timeout.
        await lab.wait_for(lambda: agent_named(lab.awareness, "ending-agent") is None, timeout=15)


# --- principals, permissions and idle agents (own servers) -----------------------------------


async def test_principals_cannot_remove_each_others_agents_and_see_only_what_they_may_read(server_factory, tmp_path):
    config = jwt_config(
        tmp_path / "jwt",
        ["p, alice, **, write, allow", "p, bob, shared/**, read, allow"],
    )
    own = server_factory("principals", config=config)
    shared = new_text(own, "shared/notes.txt", "shared\n")
    secret = new_text(own, "secret/plan.txt", "secret\n")
    alice_token, bob_token = token_for("alice", "claude"), token_for("bob", "cursor")
    async with (
        Collaborator.join(own, shared, "file") as lab,
        Collaborator.join(own, secret, "file") as lab_secret,
        mcp_client(own, alice_token) as alice,
        mcp_client(own, bob_token) as bob,
    ):
        await call(alice, "join_session", session_id=lab.room_id)
        await call(alice, "join_session", session_id=lab_secret.room_id)
        await call(alice, "insert_text", path=secret, text="TOP ", position=0)
        await call(alice, "set_user_presence", status="busy", message="planning")
        await lab.wait_for(lambda: agent_named(lab.awareness, "claude for alice") is not None)

        refused = await call(bob, "leave_session", session_id=lab.room_id)
        assert refused["left"] is False
        await call(bob, "set_user_presence", status="away")
        # Alice's next awareness update carries her agent's whole state: bob's call, done before, shows in it if at all.
        await call(alice, "update_cursor_position", document_path=shared, position={"line": 0, "column": 1})
        await lab.wait_for(lambda: (agent := agent_named(lab.awareness, "claude for alice")) and agent.get("cursors"))
        alice_agent = agent_named(lab.awareness, "claude for alice")
        assert alice_agent is not None and alice_agent["presence"]["status"] == "busy"

        forbidden = await call_error(bob, "join_session", session_id=lab_secret.room_id)
        assert forbidden["code"] == "forbidden"
        assert (await call_error(bob, "get_user_cursors", document_path=secret))["code"] == "forbidden"
        assert (await call_error(bob, "get_user_activity", document_path=secret))["code"] == "forbidden"

        activity = await call(bob, "get_user_activity", limit=200)
        assert activity["count"] > 0
        assert all(a["document_path"] in (None, shared) for a in activity["activities"])
        sessions = await call(bob, "get_active_sessions")
        assert [s["document_path"] for s in sessions["sessions"]] == [shared]
        users = await call(bob, "get_online_users")
        agent = next(u for u in users["users"] if u["display_name"] == "claude for alice")
        assert agent["documents"] == [shared] and agent["verified"] and agent["agent_for"] == "alice"

        left = await call(alice, "leave_session", session_id=lab.room_id)
        assert left["left"] is True
        await lab.wait_for(lambda: agent_named(lab.awareness, "claude for alice") is None)


async def test_idle_agents_leave_after_the_idle_timeout(server_factory):
    own = server_factory("idle", config={"CollabMCP": {"agent_idle_timeout": 1.0}})
    path = new_text(own, "idle.txt", "idle\n")
    async with Collaborator.join(own, path, "file") as lab, mcp_client(own, client_name="idle-agent") as client:
        await call(client, "join_session", session_id=lab.room_id)
        await lab.wait_for(lambda: agent_named(lab.awareness, "idle-agent") is not None)
        await lab.wait_for(lambda: agent_named(lab.awareness, "idle-agent") is None, timeout=10)
        feed = await call(client, "get_user_activity", document_path=path)
        assert any(a["activity_type"] == "leave" and "idle" in a["description"] for a in feed["activities"])
