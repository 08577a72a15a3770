"""JWT bearer tokens, verified with PyJWT against configured keys only."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jwt

from .jwt_keys import KeyFile, RemoteKeys, SecretFile, key_type_for
from .principal import AuthMethod, Principal, is_plain_name

_SYMMETRIC = ("HS256", "HS384", "HS512")
ASYMMETRIC = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
SUPPORTED_ALGORITHMS = _SYMMETRIC + ASYMMETRIC


class InvalidCredentials(Exception):
    """A credential was presented and is not acceptable; the message names why (never the token)."""


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("ey")


class UnknownKey(InvalidCredentials):
    """The token names a key id none of the configured keys has (yet: a JWKS may have rotated)."""


class JWTVerifier:
    """Verifies tokens meant for this server (audience) from trusted issuers.

    The key is chosen by the algorithm family, never by the token: an HS256 token
    is checked only against the shared secret, so a token "signed" with the RSA
    public key as an HMAC secret fails, and an ES256 token naming an RSA key's
    id is refused before any verification.
    """

    def __init__(
        self,
        *,
        audience: str,
        algorithms: Sequence[str],
        secret_file: str = "",
        key_file: str = "",
        jwks_url: str = "",
        jwks_cache_seconds: float = 300,
        jwks_refetch_seconds: float = 30,
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
        self._secret = SecretFile(Path(secret_file)) if secret_file else None
        self._key_file = KeyFile(Path(key_file)) if key_file else None
        self._remote = (
            RemoteKeys(jwks_url, cache_seconds=jwks_cache_seconds, refetch_seconds=jwks_refetch_seconds)
            if jwks_url
            else None
        )
        has_public_keys = self._key_file is not None or self._remote is not None
        self.algorithms = tuple(
            alg for alg in algorithms if (alg in _SYMMETRIC and self._secret) or (alg in ASYMMETRIC and has_public_keys)
        )
        if not self.algorithms:
            raise ValueError("no configured JWT algorithm has a matching key")

    async def authenticate(self, token: str) -> Principal:
        """Verify `token`, fetching a JWKS URL's keys when they are old or the token names a new key id."""
        if self._remote is None:
            return self.verify(token)
        await self._remote.refresh(unknown_kid=False)
        try:
            return self.verify(token)
        except UnknownKey:
            await self._remote.refresh(unknown_kid=True)
            return self.verify(token)

    def verify(self, token: str) -> Principal:
        """Verify against the keys held now (key files are re-read if they changed); never fetches."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidCredentials(f"malformed token: {exc}") from None
        alg = header.get("alg")
        if alg not in self.algorithms:
            raise InvalidCredentials(f"algorithm {str(alg)[:32]!r} is not allowed")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise InvalidCredentials("the token's 'kid' must be a string")
        if alg in _SYMMETRIC:
            assert self._secret is not None
            key = self._secret.secret()
        else:
            key = self._public_key_for(alg, kid)
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
        except Exception as exc:
            # A key that does not fit the token (curve, size) fails inside the crypto library: still a bad token.
            raise InvalidCredentials(f"token rejected: {type(exc).__name__}") from None
        return self._principal(claims)

    def _public_key_for(self, alg: str, kid: str | None) -> Any:
        keys = [
            *(self._key_file.keys() if self._key_file is not None else ()),
            *(self._remote.keys() if self._remote is not None else ()),
        ]
        if len(keys) == 1 and keys[0].kid is None:
            # One configured key without an id is the key, whatever id the provider stamps on its tokens.
            chosen = keys[0]
        elif kid is None:
            if len(keys) != 1:
                raise InvalidCredentials("the token names no key ('kid') and several keys are configured")
            chosen = keys[0]
        else:
            matching = [key for key in keys if key.kid == kid]
            if not matching:
                raise UnknownKey(f"no configured key matches kid {kid[:64]!r}")
            chosen = matching[-1]
        if chosen.key_type != key_type_for(alg):
            raise InvalidCredentials(f"algorithm {alg} does not fit the {chosen.key_type} key the token names")
        return chosen.key

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
            # Without a required issuer, any issuer trusted with these keys (a multi-tenant provider's
            # shared keys) could name the owner: owner rights over JWT need `jwt_issuer`.
            is_owner=bool(self.owner and self.issuer) and user == self.owner,
            display_name=str(claims.get("name") or user),
        )
