"""JWT bearer tokens, verified with PyJWT against configured keys only."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jwt

from .principal import AuthMethod, Principal, is_plain_name

_SYMMETRIC = ("HS256", "HS384", "HS512")
ASYMMETRIC = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
SUPPORTED_ALGORITHMS = _SYMMETRIC + ASYMMETRIC


class InvalidCredentials(Exception):
    """A credential was presented and is not acceptable; the message names why (never the token)."""


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("ey")


class JWTVerifier:
    """Verifies tokens meant for this server (audience) from trusted issuers.

    The key is chosen by the algorithm family, never by the token: an HS256 token
    is checked only against the shared secret, so a token "signed" with the RSA
    public key as an HMAC secret fails.
    """

    def __init__(
        self,
        *,
        audience: str,
        algorithms: Sequence[str],
        secret_file: str = "",
        key_file: str = "",
        issuer: str = "",
        user_claim: str = "sub",
        groups_claim: str = "groups",
        agent_claims: Sequence[str] = ("azp", "client_id"),
        owner: str = "",
        leeway: float = 0,
    ) -> None:
        unknown = [alg for alg in algorithms if alg not in SUPPORTED_ALGORITHMS]
        if unknown:
            raise ValueError(f"unsupported JWT algorithms {unknown} (supported: {SUPPORTED_ALGORITHMS})")
        self.audience = audience
        self.issuer = issuer
        self.user_claim = user_claim
        self.groups_claim = groups_claim
        self.agent_claims = tuple(agent_claims)
        self.owner = owner
        self.leeway = leeway
        self._secret = Path(secret_file).read_bytes().strip() if secret_file else None
        self._public_keys = _load_public_keys(Path(key_file)) if key_file else None
        self.algorithms = tuple(
            alg
            for alg in algorithms
            if (alg in _SYMMETRIC and self._secret) or (alg in ASYMMETRIC and self._public_keys)
        )
        if not self.algorithms:
            raise ValueError("no configured JWT algorithm has a matching key")

    def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidCredentials(f"malformed token: {exc}") from None
        alg = header.get("alg")
        if alg not in self.algorithms:
            raise InvalidCredentials(f"algorithm {alg!r} is not allowed")
        key = self._secret if alg in _SYMMETRIC else self._public_key_for(header.get("kid"))
        options: dict[str, Any] = {"require": ["exp", "aud"], "verify_iss": bool(self.issuer)}
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer or None,
                options=options,
                leeway=self.leeway,
            )
        except jwt.PyJWTError as exc:
            raise InvalidCredentials(f"token rejected: {exc}") from None
        return self._principal(claims)

    def _public_key_for(self, kid: str | None) -> Any:
        assert self._public_keys is not None
        if kid is not None and kid in self._public_keys:
            return self._public_keys[kid]
        if kid is None and len(self._public_keys) == 1:
            return next(iter(self._public_keys.values()))
        raise InvalidCredentials(f"no configured key matches kid {kid!r}")

    def _principal(self, claims: dict[str, Any]) -> Principal:
        user = claims.get(self.user_claim)
        if not isinstance(user, str) or not user:
            raise InvalidCredentials(f"token has no '{self.user_claim}' claim naming the user")
        # An empty groups_claim: groups come from elsewhere (the hub), never from the token.
        groups = (claims.get(self.groups_claim) or []) if self.groups_claim else []
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise InvalidCredentials(f"claim '{self.groups_claim}' must be a list of strings")
        agent = next((claims[c] for c in self.agent_claims if isinstance(claims.get(c), str) and claims[c]), None)
        if not is_plain_name(user) or (agent is not None and not is_plain_name(agent)):
            raise InvalidCredentials("user and agent names may not contain ':'")
        if not all(is_plain_name(group) for group in groups):
            raise InvalidCredentials("group names may not contain ':'")
        return Principal(
            user=user,
            auth=AuthMethod.JWT,
            realm=str(claims.get("iss") or "jwt"),
            groups=tuple(groups),
            agent=agent,
            is_owner=bool(self.owner) and user == self.owner,
            display_name=str(claims.get("name") or user),
        )


def _load_public_keys(path: Path) -> dict[str | None, Any]:
    """A PEM public key, a JWK, or a JWKS, keyed by kid (None for a lone PEM key)."""
    text = path.read_text()
    if text.lstrip().startswith("{"):
        document = json.loads(text)
        jwks = document["keys"] if "keys" in document else [document]
        keys = {}
        for entry in jwks:
            jwk = jwt.PyJWK(entry)
            keys[entry.get("kid")] = jwk.key
        return keys
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    return {None: load_pem_public_key(text.encode())}
