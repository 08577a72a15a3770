"""Identity: the owner token, JWTs of each algorithm, and every bad credential's exact refusal."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import httpx
import jwt
import pytest
from harness import JupyterServer, audit_records, call, call_error, mcp_client, parse_challenge
from jwt_support import (
    _RSA,
    _RSA_PUBLIC_PEM,
    AUDIENCE,
    ISSUER,
    SECRET,
    claims,
    hs256_with_rsa_public_key,
    token,
    unsigned,
)

from jupyter_collab_mcp_secure.identity.jwt_verifier import InvalidCredentials, JWTVerifier


async def test_server_token_is_the_owner_with_a_stable_name(server: JupyterServer) -> None:
    marker = f"notebooks/identity-{time.monotonic_ns()}"
    for _ in range(2):
        async with mcp_client(server) as client:
            await call(client, "list_notebooks", path=marker)
    records = [json.loads(line) for line in server.audit_log.read_text().splitlines()]
    callers = [
        (r["user"], r["auth"]) for r in records if r.get("tool") == "list_notebooks" and r.get("paths") == [marker]
    ]
    assert callers == [("owner", "jupyter-token")] * 2


@pytest.mark.parametrize("alg", ["HS256", "RS256", "ES256"])
async def test_owner_jwt_of_each_algorithm_reads(jwt_server: JupyterServer, alg: str) -> None:
    async with mcp_client(jwt_server, token(alg)) as client:
        notebook = await call(client, "get_notebook", path="notebooks/demo.ipynb")
    assert notebook["cell_count"] == 3


async def test_other_jwt_user_authenticates_but_is_denied(jwt_server: JupyterServer) -> None:
    async with mcp_client(jwt_server, token("RS256", sub="mallory")) as client:
        error = await call_error(client, "get_notebook", path="notebooks/demo.ipynb")
    assert error["code"] == "forbidden"
    assert "notebooks/demo.ipynb" in error["message"]


def _bad_credentials() -> list[tuple[str, dict[str, str], dict[str, str], bool]]:
    """(case, headers, query, token presented): each must be 401 with a Bearer challenge."""
    bearer = lambda value: {"Authorization": f"Bearer {value}"}  # noqa: E731
    return [
        ("no credentials", {}, {}, False),
        ("alg none", bearer(unsigned(claims())), {}, True),
        ("HS256 signed with the RSA public key", bearer(hs256_with_rsa_public_key()), {}, True),
        ("expired", bearer(token(exp=int(time.time()) - 10)), {}, True),
        ("no exp", bearer(token(exp=None)), {}, True),
        ("nbf in the future", bearer(token(nbf=int(time.time()) + 600)), {}, True),
        ("wrong aud", bearer(token(aud="someone-else")), {}, True),
        ("wrong iss", bearer(token(iss="https://evil.example")), {}, True),
        ("bad signature", bearer(token()[:-4] + "AAAA"), {}, True),
        ("missing user claim", bearer(token(sub=None)), {}, True),
        ("user posing as a policy subject", bearer(token(sub="role:owner")), {}, True),
        ("agent posing as a policy subject", bearer(token(azp="group:admins")), {}, True),
        ("group posing as a policy subject", bearer(token(groups=["role:owner"])), {}, True),
        ("unknown opaque token", bearer("not-a-real-token"), {}, True),
        ("bad scheme", {"Authorization": f"Basic {base64.b64encode(b'a:b').decode()}"}, {}, True),
        ("cookie only", {"Cookie": "_xsrf=1; username-127-0-0-1-8888=x"}, {}, False),
    ]


@pytest.mark.parametrize(
    ("case", "headers", "query", "presented"), _bad_credentials(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_bad_credentials_get_401_with_challenge(
    jwt_server: JupyterServer, case: str, headers: dict[str, str], query: dict[str, str], presented: bool
) -> None:
    response = httpx.post(jwt_server.mcp_url, headers=headers, params=query, json={})
    assert response.status_code == 401, case
    scheme, params = parse_challenge(response.headers["www-authenticate"])
    assert scheme == "Bearer"
    assert params["resource_metadata"] == jwt_server.url + ".well-known/oauth-protected-resource/mcp"
    # RFC 6750: an error (with its description) only when a token was presented and refused.
    assert params.get("error") == ("invalid_token" if presented else None)
    assert ("error_description" in params) is presented
    assert "set-cookie" not in response.headers


def test_token_in_query_string_is_refused_even_when_valid(jwt_server: JupyterServer) -> None:
    response = httpx.post(jwt_server.mcp_url, params={"token": jwt_server.token}, json={})
    assert response.status_code == 401
    assert "query string" in response.json()["error_description"]


def test_cookie_does_not_rescue_a_bad_token(jwt_server: JupyterServer) -> None:
    # A browser login cookie for the same server must not authenticate /mcp, even beside a bad token.
    login = httpx.get(jwt_server.url + "lab", params={"token": jwt_server.token}, follow_redirects=False)
    cookies = "; ".join(f"{name}={value}" for name, value in login.cookies.items())
    assert cookies
    response = httpx.post(jwt_server.mcp_url, headers={"Cookie": cookies, "Authorization": "Bearer wrong"}, json={})
    assert response.status_code == 401


def test_metadata_names_the_jwt_issuer(jwt_server: JupyterServer) -> None:
    metadata = httpx.get(jwt_server.url + ".well-known/oauth-protected-resource/mcp").json()
    assert metadata == {
        "resource": jwt_server.mcp_url,
        "authorization_servers": [ISSUER],
        "bearer_methods_supported": ["header"],
        "resource_name": "Jupyter collaboration (MCP)",
    }


def test_jwt_disabled_without_audience(tmp_path: Path) -> None:
    (tmp_path / "secret").write_bytes(SECRET)
    with pytest.raises(ValueError):
        JWTVerifier(audience=AUDIENCE, algorithms=["RS256"], secret_file=str(tmp_path / "secret"))


def test_pem_public_key_file(tmp_path: Path) -> None:
    (tmp_path / "key.pem").write_bytes(_RSA_PUBLIC_PEM)
    verifier = JWTVerifier(
        audience=AUDIENCE,
        algorithms=["RS256", "HS256"],
        key_file=str(tmp_path / "key.pem"),
        owner="owner",
        issuer=ISSUER,
    )
    principal = verifier.verify(jwt.encode(claims(groups=["team"]), _RSA, algorithm="RS256"))
    assert (principal.user, principal.groups, principal.agent, principal.is_owner) == (
        "owner",
        ("team",),
        "claude-agent",
        True,
    )
    assert principal.rate_key == f"{ISSUER}:owner"
    # HS256 is not usable without a secret: the public key is never an HMAC key.
    assert verifier.algorithms == ("RS256",)
    with pytest.raises(InvalidCredentials):
        verifier.verify(hs256_with_rsa_public_key())


def test_unsupported_algorithm_config_is_refused() -> None:
    with pytest.raises(ValueError):
        JWTVerifier(audience=AUDIENCE, algorithms=["none"], secret_file="/dev/null")


def test_configurable_claims(tmp_path: Path) -> None:
    (tmp_path / "secret").write_bytes(SECRET)
    verifier = JWTVerifier(
        audience=AUDIENCE,
        algorithms=["HS256"],
        secret_file=str(tmp_path / "secret"),
        user_claim="preferred_username",
        groups_claim="roles",
        agent_claims=["agent_id"],
    )
    encoded = jwt.encode(claims(preferred_username="alice", roles=["r1"], agent_id="bot-7"), SECRET, algorithm="HS256")
    principal = verifier.verify(encoded)
    assert (principal.user, principal.groups, principal.agent) == ("alice", ("r1",), "bot-7")
    assert principal.subjects == ("alice", "agent:bot-7", "group:r1")


async def test_tokens_resolved_by_the_servers_identity_provider(server_factory) -> None:
    tokens = {"hub-token-owner": {"name": "owner"}, "hub-token-alice": {"name": "alice", "groups": ["team"]}}
    hub_like = server_factory(
        "hub-like",
        config={"ServerApp": {"identity_provider_class": "table_identity.TableIdentityProvider"}},
        env={
            "TABLE_IDENTITY_TOKENS": json.dumps(tokens),
            "PYTHONPATH": str(Path(__file__).parent / "plugins"),
        },
    )
    async with mcp_client(hub_like, "hub-token-owner") as client:
        notebook = await call(client, "get_notebook", path="notebooks/demo.ipynb")
    assert notebook["cell_count"] == 3
    async with mcp_client(hub_like, "hub-token-alice") as client:
        denied = await call_error(client, "get_notebook", path="notebooks/demo.ipynb")
    assert denied["code"] == "forbidden"
    refused = httpx.post(hub_like.mcp_url, headers={"Authorization": "Bearer hub-token-unknown"}, json={})
    assert refused.status_code == 401
    records = await audit_records(hub_like, lambda r: r.get("tool") == "get_notebook", 2)
    calls = [(r["user"], r["auth"], r["decision"]) for r in records]
    assert calls == [("owner", "jupyter", "allow"), ("alice", "jupyter", "deny")]


async def test_an_es256_token_naming_the_rsa_key_of_a_mixed_jwks_is_a_recorded_401(jwt_server: JupyterServer) -> None:
    from jwt_support import _EC

    forged = jwt.encode(claims(), _EC, algorithm="ES256", headers={"kid": "rsa1"})
    response = httpx.post(jwt_server.mcp_url, headers={"Authorization": f"Bearer {forged}"}, json={})
    assert response.status_code == 401
    records = await audit_records(
        jwt_server, lambda r: r["event"] == "auth_failure" and "does not fit" in r.get("reason", ""), 1
    )
    assert len(records) == 1


def test_a_lone_pem_key_is_the_key_whatever_kid_the_token_names(tmp_path: Path) -> None:
    (tmp_path / "key.pem").write_bytes(_RSA_PUBLIC_PEM)
    verifier = JWTVerifier(audience=AUDIENCE, algorithms=["RS256"], key_file=str(tmp_path / "key.pem"))
    assert verifier.verify(jwt.encode(claims(), _RSA, algorithm="RS256", headers={"kid": "idp-7"})).user == "owner"
