"""Units of identity under JupyterHub: the hub's user model mapped to subjects, JWT groups left to the hub."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import jwt
from harness import call_error, mcp_client
from jwt_support import AUDIENCE, SECRET, claims

from jupyter_collab_mcp_secure.identity.authenticate import Authenticator
from jupyter_collab_mcp_secure.identity.jwt_verifier import JWTVerifier


def hub_user(name: str, **model) -> SimpleNamespace:
    # What JupyterHub's IdentityProvider hands over: a user with the hub's model attached.
    return SimpleNamespace(username=name, display_name=name, hub_user={"name": name, **model})


def test_a_hub_admin_holds_role_hub_admin_and_a_plain_user_does_not() -> None:
    authenticator = Authenticator(owner="alice", jwt_verifier=None)
    admin = authenticator.principal_for_jupyter_user(hub_user("carol", kind="user", admin=True, groups=["team"]))
    assert admin.subjects == ("carol", "group:team", "role:hub-admin")
    plain = authenticator.principal_for_jupyter_user(hub_user("bob", kind="user", admin=False))
    assert plain.subjects == ("bob",)


def test_a_service_is_never_the_user_of_the_same_name() -> None:
    authenticator = Authenticator(owner="alice", jwt_verifier=None)
    service = authenticator.principal_for_jupyter_user(hub_user("alice", kind="service", admin=True, groups=["team"]))
    assert service.user == "service:alice"
    assert service.subjects == ("service:alice",)
    assert not service.is_owner and service.rate_key == "jupyter:service:alice"


def test_jwt_groups_can_be_ignored(tmp_path: Path) -> None:
    (tmp_path / "secret").write_bytes(SECRET)
    encoded = jwt.encode(claims(sub="erin", groups=["team"]), SECRET, algorithm="HS256")
    trusting = JWTVerifier(audience=AUDIENCE, algorithms=["HS256"], secret_file=str(tmp_path / "secret"))
    assert trusting.verify(encoded).groups == ("team",)
    ignoring = JWTVerifier(
        audience=AUDIENCE, algorithms=["HS256"], secret_file=str(tmp_path / "secret"), groups_claim=""
    )
    assert ignoring.verify(encoded).groups == ()


async def test_jwt_ignore_groups_leaves_group_rules_to_the_hub(server_factory, tmp_path: Path) -> None:
    (tmp_path / "secret").write_bytes(SECRET)
    (tmp_path / "policy.csv").write_text("p, role:owner, **, admin, allow\np, group:team, notes.txt, read, allow\n")
    server = server_factory(
        name="jwt-no-groups",
        config={
            "CollabMCP": {
                "jwt_secret_file": str(tmp_path / "secret"),
                "jwt_algorithms": ["HS256"],
                "jwt_audience": AUDIENCE,
                "jwt_ignore_groups": True,
                "policy_file": str(tmp_path / "policy.csv"),
            }
        },
    )
    encoded = jwt.encode(claims(sub="erin", groups=["team"]), SECRET, algorithm="HS256")
    async with mcp_client(server, encoded) as client:
        refused = await call_error(client, "get_document", path="notes.txt")
    assert refused["code"] == "forbidden"
