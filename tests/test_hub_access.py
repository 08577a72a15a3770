"""Who gets into a user's server under a real JupyterHub, and as whom: owners, shares, hub admins, services."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest
from harness import LEGACY, MODERN, call, call_error, mcp_client
from hub_fixtures import HUB_ADMIN, TOKEN_CACHE_SECONDS, Hub, read_audit

pytestmark = pytest.mark.xdist_group("hub")


@pytest.fixture(scope="module")
def alice(alice_server: Hub) -> Hub:
    (alice_server.homes / "alice" / "notes.txt").write_text("alice's notes\n")
    (alice_server.homes / "alice" / "private").mkdir(exist_ok=True)
    (alice_server.homes / "alice" / "private" / "diary.txt").write_text("secret\n")
    return alice_server


@pytest.fixture
def bob_shared(alice: Hub) -> Iterator[str]:
    """alice's server shared with bob (a user share) for one test; bob's hub API token."""
    alice.share("alice", "bob")
    try:
        yield alice.user_token("bob")
    finally:
        alice.unshare("alice", "bob")


def post_mcp(hub: Hub, token: str) -> httpx.Response:
    return httpx.post(
        hub.server_url("alice") + "mcp",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream"},
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        timeout=30,
    )


@pytest.mark.parametrize("mode", [MODERN, LEGACY])
async def test_the_owner_works_through_the_proxy_with_a_hub_token(alice, mode) -> None:
    endpoint = alice.endpoint("alice", alice.user_token("alice"))
    async with mcp_client(endpoint, mode=mode) as client:
        document = await call(client, "get_document", path="notes.txt")
    assert document["content"] == "alice's notes\n"


async def test_a_hub_admin_has_the_hub_admin_subject(alice) -> None:
    # No rule names carol: the bundled hub baseline lets her in as role:hub-admin only.
    endpoint = alice.endpoint("alice", alice.user_token(HUB_ADMIN))
    async with mcp_client(endpoint) as client:
        document = await call(client, "get_document", path="private/diary.txt")
    assert document["content"] == "secret\n"


async def test_a_service_named_like_the_owner_is_a_service_not_the_owner(alice, alice_policy) -> None:
    alice_policy(
        "p, role:owner, **, admin, allow\n"
        "p, role:hub-admin, **, admin, allow\n"
        "p, service:notebook-agent, notes.txt, read, allow\n"
    )
    async with mcp_client(alice.endpoint("alice", alice.service_tokens["alice"])) as client:
        refused = await call_error(client, "get_document", path="notes.txt")
    assert refused["code"] == "forbidden"
    async with mcp_client(alice.endpoint("alice", alice.service_tokens["notebook-agent"])) as client:
        document = await call(client, "get_document", path="notes.txt")
        await call_error(client, "get_document", path="private/diary.txt")
    assert document["content"] == "alice's notes\n"
    users = {record.get("user") for record in read_audit(alice, "alice") if record.get("event") == "tool_call"}
    assert {"service:alice", "service:notebook-agent"} <= users


async def test_an_invalid_token_is_401_and_a_valid_unshared_one_is_403(alice) -> None:
    invalid = post_mcp(alice, "not-a-token")
    assert invalid.status_code == 401
    assert 'error="invalid_token"' in invalid.headers["WWW-Authenticate"]
    unshared = post_mcp(alice, alice.user_token("bob"))
    assert unshared.status_code == 403, unshared.text
    challenge = unshared.headers["WWW-Authenticate"]
    assert 'error="insufficient_scope"' in challenge and "not shared" in challenge
    assert unshared.json()["error"] == "insufficient_scope"


@pytest.mark.parametrize("mode", [MODERN, LEGACY])
async def test_a_shared_user_gets_what_the_policy_says_over_mcp(alice, alice_policy, bob_shared, mode) -> None:
    alice_policy("p, role:owner, **, admin, allow\np, bob, notes.txt, read, allow\n")
    async with mcp_client(alice.endpoint("alice", bob_shared), mode=mode) as client:
        document = await call(client, "get_document", path="notes.txt")
        refused = await call_error(client, "get_document", path="private/diary.txt")
    assert document["content"] == "alice's notes\n"
    assert refused["code"] == "forbidden"


def rest(hub: Hub, token: str, method: str, path: str, **kwargs) -> httpx.Response:
    return httpx.request(
        method, hub.server_url("alice") + path, headers={"Authorization": f"token {token}"}, timeout=30, **kwargs
    )


async def test_a_shared_user_is_refused_over_rest_by_default(alice, bob_shared) -> None:
    # The baseline names nobody but the owner and hub admins: bob's share opens nothing over REST either.
    assert rest(alice, bob_shared, "GET", "api/contents/notes.txt").status_code == 403
    assert rest(alice, bob_shared, "GET", "api/contents/private/diary.txt").status_code == 403
    written = rest(
        alice, bob_shared, "PUT", "api/contents/bob.txt", json={"type": "file", "format": "text", "content": "x"}
    )
    assert written.status_code == 403
    assert not (alice.homes / "alice" / "bob.txt").exists()
    assert rest(alice, bob_shared, "POST", "api/kernels", json={"name": "python3"}).status_code == 403
    # The owner still can.
    assert rest(alice, alice.user_token("alice"), "GET", "api/contents/notes.txt").status_code == 200


async def test_over_rest_a_shared_user_gets_exactly_what_the_policy_says(alice, alice_policy, bob_shared) -> None:
    alice_policy("p, role:owner, **, admin, allow\np, bob, notes.txt, read, allow\n")
    assert rest(alice, bob_shared, "GET", "api/contents/notes.txt").status_code == 200
    assert rest(alice, bob_shared, "GET", "api/contents/private/diary.txt").status_code == 403
    overwrite = {"type": "file", "format": "text", "content": "bob was here"}
    assert rest(alice, bob_shared, "PUT", "api/contents/notes.txt", json=overwrite).status_code == 403
    assert (alice.homes / "alice" / "notes.txt").read_text() == "alice's notes\n"


async def test_an_unshare_takes_effect_within_the_token_cache_window(alice, alice_policy) -> None:
    alice_policy("p, role:owner, **, admin, allow\np, bob, notes.txt, read, allow\n")
    alice.share("alice", "bob")
    token = alice.user_token("bob")
    try:
        # Past authentication (the body is no valid MCP request): the server has now seen and cached bob's token.
        assert post_mcp(alice, token).status_code not in (401, 403)
    finally:
        alice.unshare("alice", "bob")
    bound = time.monotonic() + TOKEN_CACHE_SECONDS + 10
    while (status := post_mcp(alice, token).status_code) != 403 and time.monotonic() < bound:
        await asyncio.sleep(0.5)
    assert status == 403


async def test_a_group_share_does_not_let_api_tokens_in(alice) -> None:
    # JupyterHub (5.5 and the 6.x tested here) puts only user shares into API tokens' scopes:
    # bob, a member of `team`, needs a user share for his MCP client (docs/jupyterhub.md).
    token = alice.user_token("bob")
    alice.api("POST", "shares/alice/", json={"group": "team"}).raise_for_status()
    try:
        refused = post_mcp(alice, token)
    finally:
        alice.api("PATCH", "shares/alice/", json={"group": "team"}).raise_for_status()
    assert refused.status_code == 403, refused.text


async def test_an_owner_file_shares_within_the_admins_baseline(alice, alice_policy, bob_shared) -> None:
    # The admin's baseline (outside every home) denies bob shared/secret/; alice's own file shares shared/ with him.
    alice_policy("p, role:owner, **, admin, allow\np, bob, shared/secret/**, read, deny\n")
    home = alice.homes / "alice"
    (home / "shared" / "secret").mkdir(parents=True, exist_ok=True)
    (home / "shared" / "a.txt").write_text("a\n")
    (home / "shared" / "secret" / "x.txt").write_text("x\n")
    owner_file = home / ".jupyter" / "collab_mcp" / "owner-policy.csv"
    owner_file.parent.mkdir(parents=True, exist_ok=True)
    loaded = sum(
        1
        for r in read_audit(alice, "alice")
        if r.get("event") == "policy_reload" and r.get("source") == str(owner_file)
    )
    owner_file.write_text("p, bob, shared/**, write, allow\n")
    try:
        deadline = time.monotonic() + 20
        while (
            sum(
                1
                for r in read_audit(alice, "alice")
                if r.get("event") == "policy_reload" and r.get("source") == str(owner_file)
            )
            <= loaded
        ):
            assert time.monotonic() < deadline, "alice's server did not load her owner file"
            await asyncio.sleep(0.1)
        async with mcp_client(alice.endpoint("alice", bob_shared)) as client:
            await call(client, "update_document", path="shared/a.txt", content="bob's edit\n")
            refused = await call_error(client, "get_document", path="shared/secret/x.txt")
        assert refused["code"] == "forbidden"
    finally:
        owner_file.unlink()
