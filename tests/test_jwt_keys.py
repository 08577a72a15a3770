"""JWT keys as identity providers use them: mixed JWKS, a lone PEM key, rotation by URL and by file."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from harness import JupyterServer, audit_records, call, mcp_client, start_server
from jwt_support import AUDIENCE, ISSUER, SECRET, JWKSServer, claims, public_jwk, signed

from jupyter_collab_mcp_secure.identity.jwt_verifier import InvalidCredentials, JWTVerifier

RSA_PROVIDER = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_PROVIDER = ec.generate_private_key(ec.SECP256R1())
EC_ROTATED = ec.generate_private_key(ec.SECP256R1())
RSA_FILE = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_FILE_ROTATED = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def write_jwks(path: Path, keys: list[dict[str, Any]]) -> None:
    """Rotate a key file the way deployments do: write aside, then rename over it."""
    staged = path.with_suffix(".new")
    staged.write_text(json.dumps({"keys": keys}))
    os.replace(staged, path)


@pytest.fixture(scope="module")
def provider() -> Iterator[JWKSServer]:
    jwks = JWKSServer([public_jwk(RSA_PROVIDER, "rsa-r"), public_jwk(EC_PROVIDER, "ec-a")])
    yield jwks
    jwks.close()


@pytest.fixture(scope="module")
def rotating_server(tmp_path_factory: pytest.TempPathFactory, provider: JWKSServer) -> Iterator[JupyterServer]:
    from conftest import populate

    workdir = tmp_path_factory.mktemp("jwt-keys")
    key_file = workdir / "keys.json"
    write_jwks(key_file, [public_jwk(RSA_FILE, "file-1")])
    populate(workdir / "root")
    running = start_server(
        workdir,
        config={
            "CollabMCP": {
                "jwt_key_file": str(key_file),
                "jwt_jwks_url": provider.url,
                "jwt_jwks_refetch_seconds": 0,
                "jwt_algorithms": ["RS256", "ES256"],
                "jwt_audience": AUDIENCE,
                "jwt_issuer": ISSUER,
            }
        },
    )
    running.key_file = key_file  # type: ignore[attr-defined]
    yield running
    running.stop()


async def reads(server: JupyterServer, token: str) -> bool:
    async with mcp_client(server, token) as client:
        return (await call(client, "get_notebook", path="notebooks/demo.ipynb"))["cell_count"] == 3


async def test_an_ec_token_naming_an_rsa_key_is_a_recorded_401(rotating_server: JupyterServer) -> None:
    forged = signed(EC_PROVIDER, "ES256", "rsa-r")
    response = httpx.post(rotating_server.mcp_url, headers={"Authorization": f"Bearer {forged}"}, json={})
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert "does not fit" in response.json()["error_description"]
    records = await audit_records(
        rotating_server, lambda r: r["event"] == "auth_failure" and "does not fit" in r.get("reason", ""), 1
    )
    assert records and records[0]["auth"] == "jwt"
    assert "Traceback" not in rotating_server.log_text()
    assert await reads(rotating_server, signed(EC_PROVIDER, "ES256", "ec-a"))
    assert await reads(rotating_server, signed(RSA_PROVIDER, "RS256", "rsa-r"))


async def test_a_key_rotated_at_the_provider_is_accepted_without_restart(
    rotating_server: JupyterServer, provider: JWKSServer
) -> None:
    assert await reads(rotating_server, signed(EC_PROVIDER, "ES256", "ec-a"))
    provider.keys = [public_jwk(RSA_PROVIDER, "rsa-r"), public_jwk(EC_ROTATED, "ec-b")]
    assert await reads(rotating_server, signed(EC_ROTATED, "ES256", "ec-b"))


async def test_a_rewritten_key_file_is_read_again(rotating_server: JupyterServer) -> None:
    assert await reads(rotating_server, signed(RSA_FILE, "RS256", "file-1"))
    write_jwks(rotating_server.key_file, [public_jwk(RSA_FILE_ROTATED, "file-2")])  # type: ignore[attr-defined]
    assert await reads(rotating_server, signed(RSA_FILE_ROTATED, "RS256", "file-2"))
    refused = httpx.post(
        rotating_server.mcp_url, headers={"Authorization": f"Bearer {signed(RSA_FILE, 'RS256', 'file-1')}"}, json={}
    )
    assert refused.status_code == 401


def _pem_file(tmp_path: Path, private_key: Any) -> str:
    path = tmp_path / "key.pem"
    path.write_bytes(
        private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return str(path)


def test_a_lone_pem_key_accepts_tokens_that_carry_a_kid(tmp_path: Path) -> None:
    verifier = JWTVerifier(
        audience=AUDIENCE, algorithms=["RS256"], key_file=_pem_file(tmp_path, RSA_FILE), issuer=ISSUER
    )
    assert verifier.verify(signed(RSA_FILE, "RS256", "provider-key-7")).user == "owner"
    with pytest.raises(InvalidCredentials):
        verifier.verify(signed(RSA_FILE_ROTATED, "RS256", "provider-key-7"))


def test_a_rewritten_secret_file_is_read_again(tmp_path: Path) -> None:
    import jwt

    secret = tmp_path / "secret"
    secret.write_bytes(SECRET)
    verifier = JWTVerifier(audience=AUDIENCE, algorithms=["HS256"], secret_file=str(secret), issuer=ISSUER)
    rotated = b"another-secret-of-32-bytes-long!!"
    staged = tmp_path / "secret.new"
    staged.write_bytes(rotated)
    os.replace(staged, secret)
    assert verifier.verify(jwt.encode(claims(), rotated, algorithm="HS256")).user == "owner"


async def test_unknown_key_ids_refetch_the_jwks_at_most_once_per_interval(provider: JWKSServer) -> None:
    provider.keys = [public_jwk(EC_PROVIDER, "ec-a")]
    verifier = JWTVerifier(
        audience=AUDIENCE, algorithms=["ES256"], jwks_url=provider.url, jwks_refetch_seconds=3600, issuer=ISSUER
    )
    before = provider.fetches
    assert (await verifier.authenticate(signed(EC_PROVIDER, "ES256", "ec-a"))).user == "owner"
    assert provider.fetches == before + 1
    for attempt in range(5):
        with pytest.raises(InvalidCredentials):
            await verifier.authenticate(signed(EC_PROVIDER, "ES256", f"made-up-{attempt}"))
    assert provider.fetches == before + 1


def test_without_an_issuer_no_jwt_is_the_owner(tmp_path: Path) -> None:
    key_file = _pem_file(tmp_path, RSA_FILE)
    anywhere = JWTVerifier(audience=AUDIENCE, algorithms=["RS256"], key_file=key_file, owner="owner")
    pinned = JWTVerifier(audience=AUDIENCE, algorithms=["RS256"], key_file=key_file, owner="owner", issuer=ISSUER)
    token = signed(RSA_FILE, "RS256", None, sub="owner")
    assert anywhere.verify(token).is_owner is False
    assert pinned.verify(token).is_owner is True
