"""Character positions over a shared text that counts UTF-8 bytes, and minimal edits between two texts.

Agents count characters (Unicode code points); pycrdt's `Text` indexes UTF-8
bytes, and an offset inside a character silently appends at the end. Every
position crosses this module before it reaches the shared text.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from difflib import SequenceMatcher
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


def _common_prefix(a: str, b: str) -> int:
    # Binary search over slice comparisons: C-speed on megabyte texts.
    low, high = 0, min(len(a), len(b))
    while low < high:
        middle = (low + high + 1) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle - 1
    return low


def _common_suffix(a: str, b: str) -> int:
    low, high = 0, min(len(a), len(b))
    while low < high:
        middle = (low + high + 1) // 2
        if a[len(a) - middle :] == b[len(b) - middle :]:
            low = middle
        else:
            high = middle - 1
    return low


def _trimmed(start: int, old: str, new: str) -> Edit | None:
    """The edit turning `old` (at `start`) into `new`, without their shared ends."""
    prefix = _common_prefix(old, new)
    suffix = _common_suffix(old[prefix:], new[prefix:])
    old_middle = old[prefix : len(old) - suffix]
    new_middle = new[prefix : len(new) - suffix]
    if not old_middle and not new_middle:
        return None
    return Edit(start + prefix, start + prefix + len(old_middle), new_middle)


def minimal_edits(old: str, new: str) -> list[Edit]:
    """Edits that turn `old` into `new`, touching only what differs.

    Shared head and tail are cut first (cheap, and the common case of one
    changed region); the rest is aligned by lines, so separate changed regions
    stay separate edits and a collaborator's concurrent edit between them
    survives the merge.
    """
    outer = _trimmed(0, old, new)
    if outer is None:
        return []
    old_middle = old[outer.start : outer.end]
    if not old_middle or not outer.text:
        return [outer]
    old_lines = old_middle.splitlines(keepends=True)
    new_lines = outer.text.splitlines(keepends=True)
    matcher = SequenceMatcher(None, old_lines, new_lines, autojunk=False)
    line_starts = [0]
    for line in old_lines:
        line_starts.append(line_starts[-1] + len(line))
    edits = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        start = outer.start + line_starts[i1]
        edit = _trimmed(start, old_middle[line_starts[i1] : line_starts[i2]], "".join(new_lines[j1:j2]))
        if edit is not None:
            edits.append(edit)
    return edits


def change_counts(old: str, new: str) -> tuple[int, int]:
    """(characters added, characters removed) between two texts."""
    edits = minimal_edits(old, new)
    return sum(len(edit.text) for edit in edits), sum(edit.end - edit.start for edit in edits)
