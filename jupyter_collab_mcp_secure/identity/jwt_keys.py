"""The public keys JWTs are verified with: key files re-read when they change, a JWKS URL refetched with bounds.

Identity providers rotate their signing keys; a new `kid` must be accepted
without a restart. Key files are checked for changes on use (a stat per token);
a JWKS URL is cached, fetched again when its cache is old, and when a token
names a key id it does not hold, at most once per refetch interval, so tokens
with made-up key ids cannot make the server hammer the provider.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

log = logging.getLogger(__name__)

JWKS_FETCH_TIMEOUT = 5.0


@dataclass(frozen=True)
class VerificationKey:
    kid: str | None
    key: Any
    # The JWK key type ("RSA", "EC", "OKP"): which algorithms it can verify.
    key_type: str


def key_type_for(algorithm: str) -> str:
    """The key type an asymmetric algorithm verifies with; the token's key must be of this type."""
    if algorithm.startswith(("RS", "PS")):
        return "RSA"
    if algorithm.startswith("ES"):
        return "EC"
    return "OKP"


def _pem_key_type(key: Any) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC"
    if isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
        return "OKP"
    raise ValueError(f"unsupported public key type {type(key).__name__}")


def _from_jwks(document: dict[str, Any]) -> list[VerificationKey]:
    entries = document["keys"] if "keys" in document else [document]
    return [VerificationKey(entry.get("kid"), jwt.PyJWK(entry).key, entry["kty"]) for entry in entries]


def load_key_file(path: Path) -> list[VerificationKey]:
    """A PEM public key (no key id), a JWK, or a JWKS."""
    text = path.read_text()
    if text.lstrip().startswith("{"):
        return _from_jwks(json.loads(text))
    key = load_pem_public_key(text.encode())
    return [VerificationKey(None, key, _pem_key_type(key))]


class KeyFile:
    """A key file, read again when its modification time, size or inode changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._keys: list[VerificationKey] = []
        self.keys()
        if not self._keys:
            raise ValueError(f"no usable key in {path}")

    def keys(self) -> list[VerificationKey]:
        try:
            stat = self.path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
            if stamp != self._stamp:
                self._keys = load_key_file(self.path)
                self._stamp = stamp
                log.info("JWT keys loaded from %s (%d key(s))", self.path, len(self._keys))
        except (OSError, ValueError, KeyError, jwt.PyJWTError) as error:
            # A file being rewritten may be caught half-written: keep the last good keys and try again next time.
            if not self._keys:
                raise ValueError(f"cannot read JWT keys from {self.path}: {error}") from None
            log.warning("keeping the previous JWT keys: %s cannot be read (%s)", self.path, type(error).__name__)
        return self._keys


class SecretFile:
    """The HMAC secret, read again when the file changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._secret = b""
        if not self.secret():
            raise ValueError(f"the JWT secret file {path} is empty")

    def secret(self) -> bytes:
        try:
            stat = os.stat(self.path)
            stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
            if stamp != self._stamp:
                value = self.path.read_bytes().strip()
                if value:
                    self._secret, self._stamp = value, stamp
        except OSError as error:
            if not self._secret:
                raise ValueError(f"cannot read the JWT secret from {self.path}: {error}") from None
        return self._secret


class RemoteKeys:
    """A JWKS URL's keys: cached for `cache_seconds`, refetched for an unknown kid at most every `refetch_seconds`."""

    def __init__(self, url: str, *, cache_seconds: float, refetch_seconds: float) -> None:
        self.url = url
        self.cache_seconds = cache_seconds
        self.refetch_seconds = refetch_seconds
        self._client = jwt.PyJWKClient(url, cache_jwk_set=False, timeout=JWKS_FETCH_TIMEOUT)
        self._keys: list[VerificationKey] = []
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    def keys(self) -> list[VerificationKey]:
        return self._keys

    async def refresh(self, *, unknown_kid: bool) -> None:
        """Fetch the key set if the cache is old, or (for an unknown kid) if the last fetch is old enough."""
        async with self._lock:
            age = None if self._fetched_at is None else time.monotonic() - self._fetched_at
            limit = self.refetch_seconds if unknown_kid else self.cache_seconds
            if age is not None and age < limit:
                return
            self._fetched_at = time.monotonic()
            try:
                key_set = await asyncio.to_thread(self._client.get_jwk_set)
            except Exception as error:
                # The provider is down or answers nonsense: keep the keys we had (they may still be valid).
                log.warning("cannot fetch the JWKS from %s: %s", self.url, type(error).__name__)
                return
            self._keys = [VerificationKey(key.key_id, key.key, key.key_type) for key in key_set.keys]
            log.info("JWKS fetched from %s (%d key(s))", self.url, len(self._keys))
