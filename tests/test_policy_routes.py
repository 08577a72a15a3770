"""The server-wide Authorizer on a real server: every route decided by the policy, folder moves
decided on the subtree, /api/fileid on its path, and access that follows the document.

Principals come from a token table (as JupyterHub's provider would resolve them), so REST,
websockets and MCP each act as a named user.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import httpx
import pytest
from harness import Collaborator, audit_records, call, call_error, mcp_client, start_server
from policy_fixtures import write_atomically
from pycrdt import Text

TOKENS = {
    "tok-owner": {"name": "owner"},
    "tok-bob": {"name": "bob"},
    "tok-carol": {"name": "carol"},
    "tok-nobody": {"name": "nobody"},
}
POLICY = (
    "p, role:owner, **, admin, allow\n"
    "p, bob, projects/**, write, allow\n"
    "p, bob, projects/acme/secrets/**, read, deny\n"
    "p, bob, shared/**, admin, allow\n"
    "p, bob, restricted/**, read, deny\n"
    "p, carol, , read, allow\n"
    "p, carol, projects/**, write, allow\n"
    "p, carol, **/secrets/**, read, deny\n"
)
DEEP = "projects/deep/" + "/".join(f"l{level}" for level in range(40))


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("routes")
    policy = workdir / "policy.csv"
    policy.write_text(POLICY)
    root = workdir / "root"
    for name in (
        "projects/acme/secrets/k.txt",
        "projects/acme/readme.txt",
        "projects/plain/f.txt",
        f"{DEEP}/secrets/k.txt",
        "shared/live.txt",
        "shared/moving.txt",
        "shared/forked.txt",
    ):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(f"content of {name}\n")
    (root / "restricted").mkdir()
    running = start_server(
        workdir,
        config={
            "ServerApp": {
                "identity_provider_class": "table_identity.TableIdentityProvider",
                "jpserver_extensions": {"probe_extension": True},
            },
            "CollabMCP": {"policy_file": str(policy), "policy_authorize_server": True, "policy_poll_interval": 0.1},
        },
        env={"TABLE_IDENTITY_TOKENS": json.dumps(TOKENS), "PYTHONPATH": plugins_first()},
        token="tok-owner",
    )
    running.policy_path = policy
    yield running
    running.stop()


def plugins_first() -> str:
    # The server must still import this checkout (PYTHONPATH), with the test plugins beside it.
    return os.pathsep.join(filter(None, [str(Path(__file__).parent / "plugins"), os.environ.get("PYTHONPATH")]))


def request(hub, who, method, path, **kwargs):
    headers = {"Authorization": f"token tok-{who}"} if who else {}
    return httpx.request(method, hub.url + path, headers=headers, timeout=30, **kwargs)


@pytest.mark.parametrize("route", ["lab/api/settings", "lab/api/workspaces", "lab/api/extensions"])
def test_jupyterlab_server_state_is_decided_by_the_policy(hub, route):
    assert request(hub, "nobody", "GET", route).status_code == 403
    assert request(hub, "bob", "GET", route).status_code == 403  # no read on the root
    assert request(hub, "owner", "GET", route).status_code == 200
    assert request(hub, "carol", "GET", route).status_code == 200  # read on the root


def test_changing_jupyterlab_settings_and_workspaces_needs_admin(hub):
    schema = "lab/api/settings/@jupyterlab/apputils-extension:sanitizer"
    change = json.dumps({"raw": json.dumps({"allowedSchemes": ["javascript"]})})
    assert request(hub, "carol", "PUT", schema, content=change).status_code == 403
    assert (
        request(
            hub, "nobody", "PUT", "lab/api/workspaces/foo", json={"data": {}, "metadata": {"id": "foo"}}
        ).status_code
        == 403
    )
    assert (
        request(hub, "owner", "PUT", "lab/api/workspaces/foo", json={"data": {}, "metadata": {"id": "foo"}}).status_code
        == 204
    )
    assert (
        request(hub, "carol", "POST", "lab/api/extensions", json={"cmd": "install", "extension_name": "x"}).status_code
        == 403
    )


def test_an_unknown_route_needs_admin_on_the_root(hub):
    assert request(hub, "owner", "GET", "probe/ping").text == "pong"
    for who in ("bob", "carol", "nobody", None):
        assert request(hub, who, "GET", "probe/ping").status_code == 403


def test_oauth_discovery_still_answers_anonymous_clients_with_the_token_hint(hub):
    # MCP clients probe these without credentials after a 401; the gate must not turn the hint into a bare 403.
    discovery = request(hub, None, "GET", ".well-known/oauth-authorization-server")
    assert discovery.status_code == 404 and "token" in discovery.json()["error_description"]
    assert request(hub, None, "POST", "register", json={}).status_code == 400


def test_renaming_or_deleting_a_folder_with_a_nested_deny_is_refused(hub):
    rename = request(hub, "bob", "PATCH", "api/contents/projects/acme", json={"path": "projects/escaped"})
    assert rename.status_code == 403
    assert request(hub, "bob", "DELETE", "api/contents/projects/acme").status_code == 403
    assert (hub.root / "projects/acme/secrets/k.txt").exists()
    # Deep beneath the folder: decided on the policy, whatever depth the files are at.
    assert request(hub, "carol", "PATCH", "api/contents/projects/deep", json={"path": "projects/d2"}).status_code == 403
    assert request(hub, "carol", "DELETE", "api/contents/projects/deep").status_code == 403
    assert (hub.root / DEEP / "secrets/k.txt").exists()


def test_folder_moves_the_grant_covers_are_allowed(hub):
    assert (
        request(hub, "bob", "PATCH", "api/contents/projects/plain", json={"path": "projects/moved"}).status_code == 200
    )
    assert (
        request(hub, "bob", "PATCH", "api/contents/projects/moved", json={"path": "projects/plain"}).status_code == 200
    )
    # A file is not a folder: nothing can be beneath it.
    assert (
        request(
            hub, "carol", "PATCH", "api/contents/projects/plain/f.txt", json={"path": "projects/plain/g.txt"}
        ).status_code
        == 200
    )
    assert (
        request(
            hub, "carol", "PATCH", "api/contents/projects/plain/g.txt", json={"path": "projects/plain/f.txt"}
        ).status_code
        == 200
    )


def file_id(hub, path):
    session = request(hub, "owner", "PUT", f"api/collaboration/session/{path}", json={"format": "text", "type": "file"})
    session.raise_for_status()
    return session.json()["fileId"]


def test_fileid_is_decided_on_the_path_it_names(hub):
    secret_id = file_id(hub, "projects/acme/secrets/k.txt")
    plain_id = file_id(hub, "projects/plain/f.txt")
    # carol may list the root but not read secrets: the id and the name stay hidden.
    assert (
        request(hub, "carol", "GET", "api/fileid/id", params={"path": "projects/acme/secrets/k.txt"}).status_code == 403
    )
    assert request(hub, "carol", "GET", "api/fileid/path", params={"id": secret_id}).status_code == 403
    assert (
        request(hub, "carol", "GET", "api/fileid/id", params={"path": "projects/plain/f.txt"}).json()["id"] == plain_id
    )
    assert (
        request(hub, "carol", "GET", "api/fileid/path", params={"id": plain_id}).json()["path"]
        == "projects/plain/f.txt"
    )


async def closed_code(peer: Collaborator) -> int:
    await asyncio.wait_for(peer.websocket.wait_closed(), 30)
    return peer.websocket.close_code


async def test_a_silent_connection_is_closed_when_read_is_revoked(hub):
    async with Collaborator.join(hub, "shared/live.txt", kind="file", token="tok-bob") as bob:
        write_atomically(hub.policy_path, POLICY + "p, bob, shared/live.txt, read, deny\n")
        try:
            # bob sends nothing: the reload itself must end the connection.
            assert await closed_code(bob) == 4403
        finally:
            write_atomically(hub.policy_path, POLICY)
    records = await audit_records(hub, lambda r: r.get("event") == "rtc_connection_closed", 1)
    assert records[0]["user"] == "bob" and records[0]["paths"] == ["shared/live.txt"]


async def test_a_connection_follows_its_document_into_a_restricted_folder(hub):
    async with (
        Collaborator.join(hub, "shared/moving.txt", kind="file", token="tok-bob") as bob,
        Collaborator.join(hub, "shared/moving.txt", kind="file") as owner,
    ):
        moved = request(hub, "owner", "PATCH", "api/contents/shared/moving.txt", json={"path": "restricted/moving.txt"})
        assert moved.status_code == 200
        assert await closed_code(bob) == 4403
        owner.doc.get("source", type=Text).insert(0, "after the move ")
        await owner.wait_for(lambda: "after the move" in str(owner.doc.get("source", type=Text)))
    assert "after the move" not in str(bob.doc.get("source", type=Text))


async def test_a_fork_is_authorized_on_its_root_documents_current_path(hub):
    async with mcp_client(hub, "tok-bob") as client:
        fork_id = (await call(client, "fork_document", path="shared/forked.txt", synchronize=True))["fork_id"]
        assert await call(client, "get_document", path="shared/forked.txt", fork_id=fork_id)
        moved = request(hub, "owner", "PATCH", "api/contents/shared/forked.txt", json={"path": "restricted/forked.txt"})
        assert moved.status_code == 200
        error = await call_error(client, "get_document", path="shared/forked.txt", fork_id=fork_id)
        assert error["code"] == "forbidden" and "restricted/forked.txt" in error["message"]
