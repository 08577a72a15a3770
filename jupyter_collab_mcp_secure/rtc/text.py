"""Character positions over a shared text that counts UTF-8 bytes, and applying character edits to it.

Agents count characters (Unicode code points); pycrdt's `Text` indexes UTF-8
bytes, and an offset inside a character silently appends at the end. Every
position crosses this module before it reaches the shared text.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..gateway.errors import INVALID_ARGUMENT, ToolFailure

APPEND = -1


@dataclass(frozen=True)
class Edit:
    """Replace characters [start, end) of the old text with `text`."""

    start: int
    end: int
    text: str


def byte_offset(content: str, position: int) -> int:
    return len(content[:position].encode("utf-8"))


def checked_position(content: str, position: int, *, allow_append: bool = True) -> int:
    """A character position inside `content` (0..len); -1 means the end."""
    if allow_append and position == APPEND:
        return len(content)
    if not 0 <= position <= len(content):
        raise ToolFailure(
            INVALID_ARGUMENT,
            f"position {position} is outside the document (0..{len(content)} characters"
            + (", or -1 to append)" if allow_append else ")"),
        )
    return position


def checked_length(content: str, position: int, length: int) -> int:
    if length < 0:
        raise ToolFailure(INVALID_ARGUMENT, f"length must be >= 0, not {length}")
    if position + length > len(content):
        raise ToolFailure(
            INVALID_ARGUMENT,
            f"{length} characters from position {position} run past the end of the document "
            f"({len(content)} characters)",
        )
    return length


def apply_edits(ytext: Any, content: str, edits: Iterable[Edit]) -> None:
    """Apply character edits (computed against `content`, the current text) to a pycrdt Text.

    Call inside a transaction. Edits are applied from the last to the first so
    earlier byte offsets stay valid; byte offsets come from one forward pass.
    """
    ordered = sorted(edits, key=lambda edit: edit.start)
    offsets: list[tuple[int, int]] = []
    consumed_chars = consumed_bytes = 0
    for edit in ordered:
        start = consumed_bytes + len(content[consumed_chars : edit.start].encode("utf-8"))
        end = start + len(content[edit.start : edit.end].encode("utf-8"))
        offsets.append((start, end))
        consumed_chars, consumed_bytes = edit.end, end
    for edit, (start, end) in zip(reversed(ordered), reversed(offsets)):
        if end > start:
            del ytext[start:end]
        if edit.text:
            ytext.insert(start, edit.text)
