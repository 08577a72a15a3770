"""The policy through a real server: MCP denials, filtered listings, hot reload, and the
server-wide Authorizer over real HTTP and a real RTC websocket."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets
from harness import (
    Collaborator,
    audit_records,
    call,
    call_error,
    mcp_client,
    start_server,
    write_notebook,
)
from jwt_support import AUDIENCE, ISSUER, SECRET, token
from policy_fixtures import write_atomically
from pycrdt import Map

TEAM_POLICY = "p, role:owner, **, admin, allow\np, group:team, shared/**, write, allow\n"
# The owner itself is restricted here, because only the server token authenticates REST
# and websocket requests in the test harness.
OWNER_LIMITED = (
    "p, owner, **, admin, allow\n"
    "p, role:owner, private/**, read, deny\n"
    "p, role:owner, readonly/**, write, deny\n"
    "p, role:owner, , execute, deny\n"
)


def populate(root):
    for name in (
        "shared/team.ipynb",
        "notebooks/demo.ipynb",
        "private/p.ipynb",
        "readonly/ro.ipynb",
        "open/rw.ipynb",
    ):
        write_notebook(root / name, ["x = 1"])


@pytest.fixture(scope="module")
def team_server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("policy")
    keys = workdir / "keys"
    keys.mkdir()
    (keys / "secret").write_bytes(SECRET + b"\n")
    policy = workdir / "policy.csv"
    policy.write_text(TEAM_POLICY)
    populate(workdir / "root")
    running = start_server(
        workdir,
        config={
            "CollabMCP": {
                "jwt_secret_file": str(keys / "secret"),
                "jwt_algorithms": ["HS256"],
                "jwt_audience": AUDIENCE,
                "jwt_issuer": ISSUER,
                "policy_file": str(policy),
            }
        },
    )
    running.policy_path = policy
    yield running
    running.stop()


def erin(agent="helper"):
    return token("HS256", sub="erin", groups=["team"], azp=agent)


async def test_denied_call_is_forbidden_and_names_action_and_path(team_server):
    async with mcp_client(team_server, erin()) as client:
        error = await call_error(client, "get_notebook", path="notebooks/demo.ipynb")
        assert error == {
            "code": "forbidden",
            "message": "read on 'notebooks/demo.ipynb' is not allowed",
        }
        assert await call(client, "get_notebook", path="shared/team.ipynb")


async def test_each_decision_records_the_rule_that_decided(team_server):
    async with mcp_client(team_server, erin(agent="rule-reader")) as client:
        await call_error(client, "get_notebook", path="private/p.ipynb")
        await call(client, "get_notebook", path="shared/team.ipynb")
    mine = await audit_records(
        team_server, lambda r: r.get("event") == "tool_call" and r.get("agent") == "rule-reader", 2
    )
    assert {r["paths"][0]: r["rule"] for r in mine} == {
        "private/p.ipynb": "no rule grants it (default deny)",
        "shared/team.ipynb": "line 2: p, group:team, shared/**, write, allow",
    }


async def test_listing_is_filtered_to_what_the_caller_may_read(team_server):
    async with mcp_client(team_server, erin()) as client:
        listed = json.dumps(await call(client, "list_notebooks", path=""))
    assert "shared/team.ipynb" in listed
    for hidden in ("notebooks/demo.ipynb", "private/p.ipynb", "readonly/ro.ipynb"):
        assert hidden not in listed


async def test_policy_change_takes_effect_without_restart(team_server):
    write_atomically(team_server.policy_path, TEAM_POLICY + "p, agent:scraper, **, read, deny\n")
    try:
        async with mcp_client(team_server, erin("scraper")) as client:
            async with asyncio.timeout(30):
                while "code" not in (
                    await client.call_tool("get_notebook", {"path": "shared/team.ipynb"})
                ).structured_content.get("error", {}):
                    await asyncio.sleep(0.1)
        async with mcp_client(team_server, erin("helper")) as client:
            assert await call(client, "get_notebook", path="shared/team.ipynb")
    finally:
        write_atomically(team_server.policy_path, TEAM_POLICY)


@pytest.fixture(scope="module")
def guarded_server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("guarded")
    policy = workdir / "policy.csv"
    policy.write_text(OWNER_LIMITED)
    populate(workdir / "root")
    running = start_server(
        workdir,
        config={"CollabMCP": {"policy_file": str(policy), "policy_authorize_server": True}},
    )
    running.policy_path = policy
    yield running
    running.stop()


def test_rest_contents_and_kernels_are_decided_by_the_policy(guarded_server):
    assert guarded_server.api("GET", "api/contents/notebooks/demo.ipynb").status_code == 200
    assert guarded_server.api("GET", "api/contents/private/p.ipynb").status_code == 403
    assert guarded_server.api("GET", "files/private/p.ipynb").status_code == 403
    assert (
        guarded_server.api(
            "PUT",
            "api/contents/readonly/ro.ipynb",
            json={"type": "file", "format": "text", "content": "x"},
        ).status_code
        == 403
    )
    assert guarded_server.api("POST", "api/contents/open", json={"copy_from": "private/p.ipynb"}).status_code == 403
    assert guarded_server.api("POST", "api/kernels", json={"name": "python3"}).status_code == 403
    assert guarded_server.api("GET", "api/sessions").status_code == 403


async def test_rtc_read_only_connection_keeps_awareness_and_loses_updates(
    guarded_server,
):
    async with (
        Collaborator.join(guarded_server, "readonly/ro.ipynb") as editor,
        Collaborator.join(guarded_server, "readonly/ro.ipynb") as watcher,
    ):
        await editor.set_awareness({"user": {"name": "editor"}})
        await watcher.wait_for(
            lambda: any(s.get("user", {}).get("name") == "editor" for s in watcher.awareness.states.values())
        )
        editor.doc["meta"] = Map({"dropped": True})
        # The server handles one connection's messages in order: once the watcher sees the awareness
        # sent after the update, the update was applied and relayed, or dropped.
        await editor.flush()
        await editor.set_awareness({"user": {"name": "editor", "edited": True}})
        await watcher.wait_for(lambda: any(s.get("user", {}).get("edited") for s in watcher.awareness.states.values()))
        async with Collaborator.join(guarded_server, "readonly/ro.ipynb") as late:
            assert "dropped" not in late.doc.get("meta", type=Map)  # the room's own document never had it
        assert "dropped" not in watcher.doc.get("meta", type=Map)
    async with (
        Collaborator.join(guarded_server, "open/rw.ipynb") as editor,
        Collaborator.join(guarded_server, "open/rw.ipynb") as watcher,
    ):
        editor.doc["meta"] = meta = Map()
        meta["relayed"] = True
        await watcher.wait_for(lambda: "relayed" in watcher.doc.get("meta", type=Map))


def test_rtc_room_needs_read_on_its_document(guarded_server):
    session = guarded_server.api(
        "PUT",
        "api/collaboration/session/private/p.ipynb",
        json={"format": "json", "type": "notebook"},
    )
    assert session.status_code == 403


async def test_fork_rooms_are_decided_on_their_root_document(guarded_server):
    async with mcp_client(guarded_server) as client:
        fork_id = (await call(client, "fork_document", path="open/rw.ipynb"))["fork_id"]
    async with Collaborator.connect(guarded_server, fork_id) as peer:
        assert peer.room_id == fork_id
    write_atomically(guarded_server.policy_path, OWNER_LIMITED + "p, role:owner, open/**, read, deny\n")
    try:
        assert await status_once_refused(lambda: Collaborator.connect(guarded_server, fork_id)) == 403
    finally:
        write_atomically(guarded_server.policy_path, OWNER_LIMITED)


async def test_unknown_rooms_and_the_event_stream_are_refused(guarded_server):
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with Collaborator.connect(guarded_server, "not-a-room-or-fork"):
            pass
    assert refused.value.response.status_code == 403
    write_atomically(guarded_server.policy_path, "p, owner, **, write, allow\n")
    try:
        # Every principal's audit records and document paths flow there: admin only.
        url = f"{guarded_server.ws_url}api/events/subscribe"
        events = lambda: websockets.connect(url, additional_headers=guarded_server.headers())  # noqa: E731
        assert await status_once_refused(events) == 403
    finally:
        write_atomically(guarded_server.policy_path, OWNER_LIMITED)


async def status_once_refused(connect) -> int:
    """The HTTP status refusing a websocket once the reloaded policy applies (the old one may still admit it)."""
    for _ in range(100):
        try:
            async with connect():
                await asyncio.sleep(0.1)
        except websockets.InvalidStatus as refused:
            return refused.response.status_code
    raise AssertionError("still admitted long after the policy changed")
