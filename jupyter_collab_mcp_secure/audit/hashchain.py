"""The hash chain shared by the writer and the verifier: one canonical form, one hash rule.

A line is the canonical JSON of its record (sorted keys, no spaces, ASCII only), and
`hash = sha256(canonical JSON of the record without "hash")`. The record's
`prev_hash` is part of what is hashed, which links it to the line before. Because
the canonical form is unique, the verifier can demand that every line is exactly
the canonical rendering of what it parses to: a change of any single byte either
alters a value (hash mismatch) or the rendering (not canonical).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

# prev_hash of the first record of a brand-new chain.
GENESIS = "0" * 64

# Every file the trail opens starts with one of these, so removing a file's first
# lines is detectable even when the file is verified on its own.
START_EVENT = "audit_start"


def canonical(record: dict[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)


def record_hash(record_without_hash: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(record_without_hash).encode("ascii")).hexdigest()


def seal(record: dict[str, Any], prev_hash: str) -> tuple[str, str]:
    """Link `record` after `prev_hash`; returns (its hash, its line without the newline)."""
    body = {key: value for key, value in record.items() if key != "hash"}
    body["prev_hash"] = prev_hash
    digest = record_hash(body)
    body["hash"] = digest
    return digest, canonical(body)
