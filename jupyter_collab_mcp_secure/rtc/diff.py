"""The one diff every edit, restore and history listing uses: small edits, bounded work, off the event loop.

Agents send whole new texts (update_document, update_notebook_cell, restore);
turning them into the few edits that differ keeps what collaborators type
elsewhere meanwhile. A general diff is quadratic in the worst case, and the
texts come from callers, so the line alignment (Myers' O((N+M)D) algorithm)
stops after a fixed amount of work and the change becomes one replace of
everything between the shared head and tail: still exact, only coarser.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from .text import Edit

# Steps of the line alignment before it gives up (a few hundred milliseconds of Python at worst).
DIFF_WORK_BUDGET = 300_000
# Texts this large are diffed in a worker thread so other calls are served meanwhile.
THREAD_DIFF_CHARS = 64 * 1024


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


def _matching_runs(a: Sequence[int], b: Sequence[int], budget: int) -> list[tuple[int, int, int]] | None:
    """Runs (i, j, length) where a and b agree, in order, by Myers' greedy algorithm; None past `budget` steps."""
    n, m = len(a), len(b)
    offset = n + m + 1
    v = [0] * (2 * offset + 1)
    trace: list[list[int]] = []
    work = 0
    for d in range(n + m + 1):
        work += d + 1
        for k in range(-d, d + 1, 2):
            if k == -d or (k != d and v[offset + k - 1] < v[offset + k + 1]):
                x = v[offset + k + 1]
            else:
                x = v[offset + k - 1] + 1
            y = x - k
            start = x
            while x < n and y < m and a[x] == b[y]:
                x += 1
                y += 1
            work += x - start
            v[offset + k] = x
            if x >= n and y >= m:
                trace.append(v[offset - d : offset + d + 1])
                return _backtrack(trace, n, m)
        if work > budget:
            return None
        trace.append(v[offset - d : offset + d + 1])
    raise AssertionError("unreachable: d = n + m always reaches the end")


def _backtrack(trace: list[list[int]], n: int, m: int) -> list[tuple[int, int, int]]:
    runs = []
    x, y = n, m
    for d in range(len(trace) - 1, -1, -1):
        k = x - y
        if d == 0:
            previous_x = previous_y = 0
        else:
            before = trace[d - 1]  # holds k in [-(d-1), d-1] at index k + d - 1

            def at(diagonal: int, before: list[int] = before, d: int = d) -> int:
                return before[diagonal + d - 1]

            down = k == -d or (k != d and at(k - 1) < at(k + 1))
            previous_k = k + 1 if down else k - 1
            previous_x = at(previous_k)
            previous_y = previous_x - previous_k
        # The snake of this round ends at (x, y) and starts just after the one edit from the previous point.
        snake_start_x = previous_x if d == 0 else (previous_x if down else previous_x + 1)
        length = x - snake_start_x
        if length > 0:
            runs.append((x - length, y - length, length))
        x, y = previous_x, previous_y
    runs.reverse()
    return runs


def minimal_edits(old: str, new: str, budget: int = DIFF_WORK_BUDGET) -> list[Edit]:
    """Edits (ascending, in characters of `old`) that turn `old` into `new`, touching only what differs.

    Shared head and tail are cut first (cheap, and the common case of one
    changed region); the rest is aligned by lines, so separate changed regions
    stay separate edits and a collaborator's concurrent edit between them
    survives the merge. Past `budget` steps of alignment, the middle is
    replaced as one edit.
    """
    outer = _trimmed(0, old, new)
    if outer is None:
        return []
    old_middle = old[outer.start : outer.end]
    if not old_middle or not outer.text:
        return [outer]
    old_lines = old_middle.splitlines(keepends=True)
    new_lines = outer.text.splitlines(keepends=True)
    ids: dict[str, int] = {}
    runs = _matching_runs(
        [ids.setdefault(line, len(ids)) for line in old_lines],
        [ids.setdefault(line, len(ids)) for line in new_lines],
        budget,
    )
    if runs is None:
        return [outer]
    old_starts = [0]
    for line in old_lines:
        old_starts.append(old_starts[-1] + len(line))
    edits = []
    i = j = 0
    for run_i, run_j, length in [*runs, (len(old_lines), len(new_lines), 0)]:
        if run_i > i or run_j > j:
            start = outer.start + old_starts[i]
            edit = _trimmed(start, old_middle[old_starts[i] : old_starts[run_i]], "".join(new_lines[j:run_j]))
            if edit is not None:
                edits.append(edit)
        i, j = run_i + length, run_j + length
    return edits


def change_counts(old: str, new: str) -> tuple[int, int]:
    """(characters added, characters removed) between two texts."""
    edits = minimal_edits(old, new)
    return sum(len(edit.text) for edit in edits), sum(edit.end - edit.start for edit in edits)


async def edits_to(read: Callable[[], str], new: str) -> tuple[str, list[Edit]]:
    """The text `read()` returns now and the edits turning it into `new`, ready to apply without awaiting.

    Large texts are diffed in a thread. If a collaborator changed the text
    meanwhile, those edits no longer fit: the trimmed single replace, exact and
    cheap, is computed against the current text instead of waiting again.
    """
    old = read()
    if len(old) + len(new) <= THREAD_DIFF_CHARS:
        return old, minimal_edits(old, new)
    edits = await asyncio.to_thread(minimal_edits, old, new)
    current = read()
    if current == old:
        return old, edits
    edit = _trimmed(0, current, new)
    return current, [edit] if edit is not None else []
