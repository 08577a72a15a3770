"""Layered policies through a real server and the official MCP client: an admin baseline, the
owner's file on top, both found through `{username}` / `{servername}` path settings."""

from __future__ import annotations

import asyncio
import hashlib

import pytest
from harness import audit_records, call, call_error, mcp_client, start_server
from jwt_support import AUDIENCE, ISSUER, SECRET, token
from policy_fixtures import write_atomically

# The owner may write everywhere but holds admin only on shared/.
BASELINE = (
    "p, role:owner, **, write, allow\np, role:owner, shared/**, admin, allow\np, bob, shared/secret/**, read, deny\n"
)
OWNER_RULES = (
    "p, bob, shared/**, write, allow\n"
    "p, carol, **, admin, allow\n"
    "p, role:owner, **, admin, allow\n"
    "g, carol, role:hub-admin\n"
)


@pytest.fixture(scope="module")
def layered_server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("layers")
    keys = workdir / "keys"
    keys.mkdir()
    (keys / "secret").write_bytes(SECRET + b"\n")
    (workdir / "baseline-lab.csv").write_text(BASELINE)
    owner_file = workdir / "owners" / "owner.csv"
    owner_file.parent.mkdir()
    owner_file.write_text(OWNER_RULES)
    root = workdir / "root"
    for name in ("shared/a.txt", "shared/secret/x.txt", "notes/n.txt"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("text\n")
    running = start_server(
        workdir,
        config={
            "CollabMCP": {
                "jwt_secret_file": str(keys / "secret"),
                "jwt_algorithms": ["HS256"],
                "jwt_audience": AUDIENCE,
                "jwt_issuer": ISSUER,
                "policy_file": str(workdir / "baseline-{servername}.csv"),
                "owner_policy_file": str(workdir / "owners" / "{username}.csv"),
            }
        },
        env={"JUPYTERHUB_SERVER_NAME": "lab"},
    )
    running.owner_file = owner_file
    yield running
    running.stop()


def as_user(name):
    return token("HS256", sub=name, azp=None)


async def test_an_owner_share_works_and_a_baseline_deny_holds(layered_server):
    async with mcp_client(layered_server, as_user("bob")) as client:
        assert (await call(client, "insert_text", path="shared/a.txt", text="bob ", position=0))["length"] > 0
        for tool, arguments in (("get_document", {}), ("insert_text", {"text": "x", "position": 0})):
            error = await call_error(client, tool, path="shared/secret/x.txt", **arguments)
            assert error["code"] == "forbidden"
        assert (await call_error(client, "get_document", path="notes/n.txt"))["code"] == "forbidden"


async def test_owner_rules_grant_nothing_the_owner_lacks(layered_server):
    async with mcp_client(layered_server, as_user("carol")) as client:
        # Admin on ** from the owner file, but the owner holds admin only on shared/.
        assert (await call_error(client, "fork_document", path="notes/n.txt"))["code"] == "forbidden"
        assert await call(client, "insert_text", path="notes/n.txt", text="carol ", position=0)
    async with mcp_client(layered_server) as owner:
        # The owner file's `p, role:owner, **, admin, allow` was ignored.
        assert (await call_error(owner, "fork_document", path="notes/n.txt"))["code"] == "forbidden"


async def test_the_owner_file_and_its_ignored_lines_are_audited(layered_server):
    source = str(layered_server.owner_file)
    record = (
        await audit_records(layered_server, lambda r: r["event"] == "policy_reload" and r["source"] == source, 1)
    )[0]
    assert record["outcome"] == "ok"
    assert record["policy_sha256"] == hashlib.sha256(OWNER_RULES.encode()).hexdigest()
    assert "line 3: ignored: owner rules may not name the reserved subject 'role:owner'" in record["reason"]
    assert "line 4: ignored: owner rules may not name the reserved subject 'role:hub-admin'" in record["reason"]


async def test_owner_file_hot_reload_keeps_the_last_good_rules(layered_server):
    source = str(layered_server.owner_file)

    def refused(record):
        return record["event"] == "policy_reload" and record["source"] == source and record["outcome"] == "error"

    write_atomically(layered_server.owner_file, "p, bob, shared/**, scribble, allow\n")
    try:
        [record] = await audit_records(layered_server, refused, 1, timeout=30)
        assert "unknown action 'scribble'" in record["reason"]
        async with mcp_client(layered_server, as_user("bob")) as client:
            assert await call(client, "insert_text", path="shared/a.txt", text="still ", position=0)
        # The owner withdraws the share: bob's writes stop without a restart.
        write_atomically(layered_server.owner_file, "p, carol, **, admin, allow\n")
        async with mcp_client(layered_server, as_user("bob")) as client:
            async with asyncio.timeout(30):
                while not (
                    await client.call_tool("insert_text", {"path": "shared/a.txt", "text": "b", "position": 0})
                ).is_error:
                    await asyncio.sleep(0.1)
            assert (await call_error(client, "get_document", path="shared/a.txt"))["code"] == "forbidden"
    finally:
        write_atomically(layered_server.owner_file, OWNER_RULES)
