"""What an MCP client sees without a usable token: an RFC 6750 challenge, honest RFC 9728 metadata, JSON OAuth paths."""

from __future__ import annotations

import httpx
import pytest
from harness import JupyterServer, parse_challenge
from traitlets import TraitError

from jupyter_collab_mcp_secure.extension import CollabMCP

METADATA = ".well-known/oauth-protected-resource/mcp"


def test_stale_token_gets_an_invalid_token_challenge_that_names_the_token(server: JupyterServer) -> None:
    response = httpx.post(server.mcp_url, headers={"Authorization": "Bearer stale-token-from-last-run"}, json={})
    assert response.status_code == 401
    scheme, params = parse_challenge(response.headers["www-authenticate"])
    assert (scheme, params["error"]) == ("Bearer", "invalid_token")
    assert params["resource_metadata"] == server.url + METADATA
    for description in (params["error_description"], response.json()["error_description"]):
        assert "token not accepted" in description
        assert "Authorization: Bearer <token>" in description
        assert "jupyter server list" in description
    assert "stale-token-from-last-run" not in response.text + response.headers["www-authenticate"]


def test_metadata_names_no_authorization_server_when_none_issues_tokens(server: JupyterServer) -> None:
    metadata = httpx.get(server.url + METADATA).json()
    assert metadata == {
        "resource": server.mcp_url,
        "bearer_methods_supported": ["header"],
        "resource_name": "Jupyter collaboration (MCP)",
    }


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", ".well-known/oauth-authorization-server", 404),
        ("GET", ".well-known/oauth-authorization-server/mcp", 404),
        ("GET", ".well-known/openid-configuration", 404),
        ("GET", "mcp/.well-known/openid-configuration", 404),
        ("POST", "register", 400),
    ],
)
def test_standalone_server_answers_oauth_discovery_and_registration_with_json(
    server: JupyterServer, method: str, path: str, status: int
) -> None:
    registration = {"client_name": "MCP Inspector", "redirect_uris": ["http://localhost:6274/oauth/callback"]}
    response = httpx.request(method, server.url + path, json=registration if method == "POST" else None)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error"] == "invalid_request"
    assert "not an OAuth authorization server" in body["error_description"]
    assert "Authorization: Bearer <token>" in body["error_description"]


def test_under_jupyterhub_the_origin_is_the_hubs_and_only_configured_servers_are_named(server_factory) -> None:
    hub = server_factory(
        "hub-origin",
        config={"CollabMCP": {"authorization_servers": ["https://login.example/realms/lab"]}},
        env={"JUPYTERHUB_API_URL": "http://127.0.0.1:9/hub/api"},
    )
    metadata = httpx.get(hub.url + METADATA).json()
    assert metadata["authorization_servers"] == ["https://login.example/realms/lab"]
    refused = httpx.post(hub.mcp_url, headers={"Authorization": "Bearer expired"}, json={})
    assert "/hub/token" in parse_challenge(refused.headers["www-authenticate"])[1]["error_description"]
    # The hub owns these paths; a single-user server does not answer for it.
    assert httpx.post(hub.url + "register", json={}).headers["content-type"].startswith("text/html")


@pytest.mark.parametrize("url", ["/hub/", "hub.example/oauth", "ftp://auth.example"])
def test_authorization_servers_must_be_absolute_urls(url: str) -> None:
    with pytest.raises(TraitError, match="absolute"):
        CollabMCP(authorization_servers=[url])
