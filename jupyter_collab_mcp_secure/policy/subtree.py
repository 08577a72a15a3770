"""Whether an action is allowed on a folder and on everything that could ever be beneath it.

Moving, copying or deleting a folder acts on all of its contents. Deciding that by
walking the files would race with changes and cost a walk per request; it is
decided on the policy instead: the action is allowed on the folder itself, some
allow rule covers the folder's whole subtree (every path beneath it), and no deny
rule that applies could match any path beneath it. This is deliberately
conservative: a deny such as `**/.env` refuses moving any folder, and allows that
only together cover a subtree (one rule per child) do not count.
"""

from __future__ import annotations

from collections.abc import Iterable

from .glob import compile_pattern, split_path


def covers_subtree(allow_patterns: Iterable[str], deny_patterns: Iterable[str], folder: str) -> bool:
    """True when every path strictly beneath `folder` is matched by an allow pattern and by no deny pattern."""
    names = split_path(folder)
    for pattern in deny_patterns:
        compiled = compile_pattern(pattern)
        if any(compiled.rest_matches_something(state) for state in compiled.states_after(names)):
            return False
    for pattern in allow_patterns:
        compiled = compile_pattern(pattern)
        if any(compiled.rest_matches_everything(state) for state in compiled.states_after(names)):
            return True
    return False
