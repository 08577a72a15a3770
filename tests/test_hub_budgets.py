"""A hub service's own budget (`rate_limit_overrides["service:<name>"]`) on a user's server under a real JupyterHub."""

from __future__ import annotations

import pytest
from harness import mcp_client
from hub_fixtures import SERVICE_BUDGETS, read_audit

pytestmark = pytest.mark.xdist_group("hub")

SERVICE = "budgeted-agent"


async def test_a_hub_service_is_held_to_its_own_budget(alice_server, alice_policy) -> None:
    hub = alice_server
    (hub.homes / "alice" / "notes.txt").write_text("alice's notes\n")
    alice_policy(f"p, role:owner, **, admin, allow\np, service:{SERVICE}, notes.txt, read, allow\n")
    assert SERVICE_BUDGETS[f"service:{SERVICE}"] == {"read": "3/hour"}  # the servers' default is 100000/minute
    outcomes = []
    async with mcp_client(hub.endpoint("alice", hub.service_tokens[SERVICE])) as client:
        for _ in range(5):
            result = await client.call_tool("get_document", {"path": "notes.txt"})
            outcomes.append(result.structured_content["error"]["code"] if result.is_error else "ok")
    assert outcomes == ["ok", "ok", "ok", "rate_limited", "rate_limited"]
    # The owner, on the same server, is not held to it.
    async with mcp_client(hub.endpoint("alice", hub.user_token("alice"))) as owner:
        assert not (await owner.call_tool("get_document", {"path": "notes.txt"})).is_error
    records = [r for r in read_audit(hub, "alice") if r.get("user") == f"service:{SERVICE}"]
    assert [r["outcome"] for r in records if r.get("event") == "tool_call"][-2:] == ["rate_limited"] * 2
