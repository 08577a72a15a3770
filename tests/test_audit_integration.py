"""Audit and rate limits through real Jupyter servers and the official MCP client."""

from __future__ import annotations

import asyncio
import json
import re
import time

import httpx
import jwt
import pytest
from harness import JupyterServer, call, call_error, mcp_client, start_server

from jupyter_collab_mcp_secure.audit.verify import verify_files

AUDIENCE = "jupyter-mcp"
ISSUER = "https://issuer.example"
SECRET = b"fedcba9876543210fedcba9876543210"
REVIEWER_POLICY = """\
p, role:owner, **, admin, allow
g, carol, group:reviewers
g, dave, group:reviewers
p, group:reviewers, **, read, allow
"""


def user_token(user: str = "carol") -> str:
    now = int(time.time())
    claims = {"sub": user, "aud": AUDIENCE, "iss": ISSUER, "exp": now + 300, "iat": now, "azp": "review-bot"}
    return jwt.encode(claims, SECRET, algorithm="HS256")


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory):
    from conftest import populate

    workdir = tmp_path_factory.mktemp("audited")
    (workdir / "secret").write_bytes(SECRET)
    (workdir / "policy.csv").write_text(REVIEWER_POLICY)
    populate(workdir / "root")
    running = start_server(
        workdir,
        config={
            "CollabMCP": {
                "jwt_secret_file": str(workdir / "secret"),
                "jwt_algorithms": ["HS256"],
                "jwt_audience": AUDIENCE,
                "jwt_issuer": ISSUER,
                "policy_file": str(workdir / "policy.csv"),
                "rate_limit_overrides": {"dave": {"read": "2/minute"}},
                "auth_failure_limit": "3/minute",
                "audit_suppressed_interval": 0.2,
                "max_edit_chars": 1000,
            }
        },
    )
    yield running
    running.stop()


async def audit_records(server: JupyterServer, predicate, count: int = 1) -> list[dict]:
    """Records matching `predicate`, once at least `count` are written (the writer is a thread)."""
    for _ in range(200):
        found = [json.loads(line) for line in server.audit_log.read_text().splitlines()]
        found = [r for r in found if predicate(r)]
        if len(found) >= count:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"expected {count} matching audit records, found {len(found)}")


async def test_denied_call_is_audited_with_who_and_through_which_agent(audited):
    async with mcp_client(audited, user_token(), client_name="IDE plugin") as client:
        notebook = await call(client, "get_notebook", path="notebooks/demo.ipynb")
        cell_id = notebook["cells"][0]["id"]
        error = await call_error(
            client, "update_notebook_cell", path="notebooks/demo.ipynb", cell_id=cell_id, content="x = 0"
        )
    assert error["code"] == "forbidden"
    (record,) = await audit_records(audited, lambda r: r.get("tool") == "update_notebook_cell" and r["user"] == "carol")
    assert record == {
        **record,
        "event": "tool_call",
        "auth": "jwt",
        "agent": "review-bot",
        "declared_client": "IDE plugin",
        "action": "write",
        "paths": ["notebooks/demo.ipynb"],
        "decision": "deny",
        "outcome": "denied",
        "error_code": "forbidden",
    }
    assert "x = 0" not in audited.audit_log.read_text() and record["args_digest"].startswith("hmac-sha256:")


async def test_rate_limited_error_carries_retry_after_and_is_audited(audited):
    async with mcp_client(audited, user_token("dave")) as client:
        await call(client, "list_notebooks")
        await call(client, "list_notebooks")
        error = await call_error(client, "get_notebook", path="notebooks/demo.ipynb")
    assert error["code"] == "rate_limited" and 1 <= error["retry_after"] <= 60
    (record,) = await audit_records(audited, lambda r: r.get("tool") == "get_notebook" and r["user"] == "dave")
    assert record["outcome"] == "rate_limited" and record["decision"] == "allow"
    # the owner's budget is its own
    async with mcp_client(audited) as client:
        await call(client, "get_notebook", path="notebooks/demo.ipynb")


async def test_oversized_edit_is_invalid_and_changes_nothing(audited):
    async with mcp_client(audited) as client:
        before = await call(client, "get_notebook", path="notebooks/demo.ipynb")
        cell_id = before["cells"][1]["id"]
        error = await call_error(
            client, "update_notebook_cell", path="notebooks/demo.ipynb", cell_id=cell_id, content="y" * 1001
        )
        after = await call(client, "get_notebook", path="notebooks/demo.ipynb")
    assert error["code"] == "invalid_argument"
    assert [c["source"] for c in after["cells"]] == [c["source"] for c in before["cells"]]
    (record,) = await audit_records(audited, lambda r: r.get("error_code") == "invalid_argument")
    assert record["user"] == "owner" and record["outcome"] == "error"


async def test_auth_failures_are_audited_without_the_token_and_a_flood_is_capped(audited):
    async with httpx.AsyncClient(timeout=30) as http:
        for _ in range(6):
            refused = await http.post(audited.mcp_url, headers={"Authorization": "Bearer not-a-valid-token"}, json={})
            assert refused.status_code == 401
    # The three past the budget are counted, in a record written after the first three.
    (counted,) = await audit_records(audited, lambda r: r["event"] == "refusals_suppressed", count=1)
    assert sum(counted["counts"]["@127.0.0.1"].values()) == 3
    records = await audit_records(audited, lambda r: r["event"] == "auth_failure", count=3)
    assert len(records) == 3
    assert all(r["remote_ip"] == "127.0.0.1" and r["outcome"] == "unauthenticated" for r in records)
    assert "not-a-valid-token" not in audited.audit_log.read_text()


async def test_live_log_verifies(audited):
    async with mcp_client(audited) as client:
        await call(client, "list_notebooks")
    await audit_records(audited, lambda r: r.get("tool") == "list_notebooks" and r["user"] == "owner")
    report = verify_files([audited.audit_log])
    assert report.ok, report.broken


async def test_chain_continues_across_a_server_restart_and_its_head_is_anchored_in_the_server_log(server_factory):
    heads = []
    for _ in range(2):
        running = server_factory("restarted")
        async with mcp_client(running) as client:
            await call(client, "list_notebooks")
        running.stop()
        heads.append(re.findall(r"audit chain head \(shutdown\): ([0-9a-f]{64})", running.log_text())[-1])
    lines = [json.loads(line) for line in running.audit_log.read_text().splitlines()]
    assert [r["reason"] for r in lines if r["event"] == "audit_start"] == ["new_chain", "restart"]
    assert verify_files([running.audit_log], expect_head=heads[-1]).ok
    assert not verify_files([running.audit_log], expect_head=heads[0]).ok


async def test_two_servers_on_one_redis_enforce_one_budget(server_factory, redis):  # noqa: F811
    shared = {"CollabMCP": {"rate_limit_storage": redis.uri, "rate_limits": {"read": "3/minute"}}}
    first = server_factory("first", config=shared)
    second = server_factory("second", config=shared)
    async with mcp_client(first) as on_first, mcp_client(second) as on_second:
        await call(on_first, "list_notebooks")
        await call(on_second, "list_notebooks")
        await call(on_first, "get_notebook", path="notebooks/demo.ipynb")
        error = await call_error(on_second, "get_notebook", path="notebooks/demo.ipynb")
        assert error["code"] == "rate_limited"
        error = await call_error(on_first, "list_notebooks")
        assert error["code"] == "rate_limited"
