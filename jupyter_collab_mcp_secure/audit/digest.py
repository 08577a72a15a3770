"""Keyed digests of tool arguments: reviewers can match identical calls, nobody can read them back.

A plain hash of short arguments (a path, a cell id) could be reversed by guessing;
an HMAC under a key kept beside the log cannot, without the key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import Any

from .hashchain import canonical

KEY_BYTES = 32


def load_or_create_key(path: Path) -> bytes:
    """The digest key, created 0600 at first start; an existing key is kept across restarts."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = bytes.fromhex(path.read_text("ascii").strip())
        if len(key) < KEY_BYTES:
            raise ValueError(f"audit digest key {path} is shorter than {KEY_BYTES} bytes") from None
        return key
    key = secrets.token_bytes(KEY_BYTES)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key.hex() + "\n")
    return key


class ArgumentDigest:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def __call__(self, arguments: dict[str, Any]) -> str:
        mac = hmac.new(self._key, canonical(arguments).encode("ascii"), hashlib.sha256)
        return "hmac-sha256:" + mac.hexdigest()
