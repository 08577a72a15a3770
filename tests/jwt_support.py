"""JWT keys, tokens and a JWT-enabled server for the tests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

AUDIENCE = "jupyter-mcp"
ISSUER = "https://issuer.example"
SECRET = b"0123456789abcdef0123456789abcdef"

_RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)
_EC = ec.generate_private_key(ec.SECP256R1())
_RSA_PUBLIC_PEM = _RSA.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
)


def _jwk(private_key: Any, kid: str, alg: str) -> dict[str, Any]:
    algorithm = jwt.algorithms.RSAAlgorithm if alg == "RS256" else jwt.algorithms.ECAlgorithm
    return {**json.loads(algorithm.to_jwk(private_key.public_key())), "kid": kid, "alg": alg, "use": "sig"}


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"sub": "owner", "aud": AUDIENCE, "iss": ISSUER, "exp": now + 300, "iat": now, "azp": "claude-agent"}
    base.update(overrides)
    return {key: value for key, value in base.items() if value is not None}


def token(alg: str = "RS256", **overrides: Any) -> str:
    payload = claims(**overrides)
    if alg == "HS256":
        return jwt.encode(payload, SECRET, algorithm="HS256")
    if alg == "RS256":
        return jwt.encode(payload, _RSA, algorithm="RS256", headers={"kid": "rsa1"})
    return jwt.encode(payload, _EC, algorithm="ES256", headers={"kid": "ec1"})


def unsigned(payload: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(payload)}."


def hs256_with_rsa_public_key() -> str:
    header = {"alg": "HS256", "typ": "JWT"}
    signing_input = ".".join(
        base64.urlsafe_b64encode(json.dumps(x).encode()).rstrip(b"=").decode() for x in (header, claims())
    )
    signature = hmac.new(_RSA_PUBLIC_PEM, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def jwt_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from conftest import populate
    from harness import start_server

    workdir = tmp_path_factory.mktemp("jwt")
    keys = workdir / "keys"
    keys.mkdir()
    (keys / "secret").write_bytes(SECRET + b"\n")
    (keys / "jwks.json").write_text(json.dumps({"keys": [_jwk(_RSA, "rsa1", "RS256"), _jwk(_EC, "ec1", "ES256")]}))
    populate(workdir / "root")
    running = start_server(
        workdir,
        config={
            "CollabMCP": {
                "jwt_secret_file": str(keys / "secret"),
                "jwt_key_file": str(keys / "jwks.json"),
                "jwt_algorithms": ["HS256", "RS256", "ES256"],
                "jwt_audience": AUDIENCE,
                "jwt_issuer": ISSUER,
            }
        },
    )
    yield running
    running.stop()


def public_jwk(private_key: Any, kid: str) -> dict[str, Any]:
    """The public JWK of an RSA or EC private key, with its key id."""
    alg = "RS256" if isinstance(private_key, rsa.RSAPrivateKey) else "ES256"
    return _jwk(private_key, kid, alg)


def signed(private_key: Any, alg: str, kid: str | None, **overrides: Any) -> str:
    headers = {"kid": kid} if kid is not None else None
    return jwt.encode(claims(**overrides), private_key, algorithm=alg, headers=headers)


class JWKSServer:
    """An identity provider's JWKS endpoint on 127.0.0.1, served from a thread; `keys` can be rotated."""

    def __init__(self, keys: list[dict[str, Any]]) -> None:
        import http.server
        import threading

        self.keys = keys
        self.fetches = 0
        provider = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                provider.fetches += 1
                body = json.dumps({"keys": provider.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/jwks.json"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
