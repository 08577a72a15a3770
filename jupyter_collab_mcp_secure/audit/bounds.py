"""Bounds on what callers can put into an audit record: the structlog processor every record passes.

Client names, tool names, JWT key ids, user and agent names, paths and reasons all
come from callers. Unbounded, one of them can make a line larger than the reader of
the file's tail accepts, and a flood of them fills the disk. Every string is cut to
`max_chars` with a marker that keeps the full value's length and SHA-256 (a reviewer
can still match two records of the same oversized value), every list and mapping to
`max_items` entries. A record whose line is still over `MAX_RECORD_BYTES` is
replaced by its identifying fields and a digest of the whole (`oversized`); the
writer thread checks that, as it renders the line anyway.
"""

from __future__ import annotations

import hashlib
from typing import Any

from .hashchain import canonical

# Well under the 64 KiB window in which the sink looks for the last line at a restart.
MAX_RECORD_BYTES = 32 * 1024
DEFAULT_MAX_CHARS = 512
DEFAULT_MAX_ITEMS = 64
# What survives when a record is too large even after bounding each field.
IDENTIFYING = ("event", "ts", "server", "user", "auth", "tool", "action", "decision", "outcome", "request_id")
# Each kept field of an oversized record: short enough that the record always fits.
IDENTIFYING_CHARS = 128


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def bound_text(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    return f"{text[:max_chars]}...[truncated: {len(text)} chars, sha256:{_digest(text)}]"


def bound_value(value: Any, max_chars: int, max_items: int) -> Any:
    if isinstance(value, str):
        return bound_text(value, max_chars)
    if isinstance(value, (list, tuple)):
        kept = [bound_value(item, max_chars, max_items) for item in value[:max_items]]
        if len(value) > max_items:
            kept.append(f"...[{len(value) - max_items} more, sha256:{_digest(canonical(list(value)))}]")
        return kept
    if isinstance(value, dict):
        items = list(value.items())
        kept_map = {
            bound_text(str(key), max_chars): bound_value(item, max_chars, max_items) for key, item in items[:max_items]
        }
        if len(items) > max_items:
            kept_map["..."] = f"[{len(items) - max_items} more, sha256:{_digest(canonical(dict(value)))}]"
        return kept_map
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return bound_text(str(value), max_chars)


class FieldBounds:
    """structlog processor: bounds every field of the event dict (see the module docstring)."""

    def __init__(self, max_chars: int = DEFAULT_MAX_CHARS, max_items: int = DEFAULT_MAX_ITEMS) -> None:
        self.max_chars = max_chars
        self.max_items = max_items

    def __call__(self, logger: Any, method_name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        return {
            bound_text(str(key), self.max_chars): bound_value(value, self.max_chars, self.max_items)
            for key, value in event_dict.items()
        }


def oversized(record: dict[str, Any], line: str) -> dict[str, Any]:
    """What is kept of a record whose rendered `line` is over MAX_RECORD_BYTES."""
    kept = {key: bound_value(record[key], IDENTIFYING_CHARS, 1) for key in IDENTIFYING if key in record}
    kept["oversized"] = {"bytes": len(line), "sha256": _digest(line)}
    return kept
