"""Path patterns for policy rules, matched segment by segment.

Casbin's built-in `globMatch` lets `**` skip dotfiles (so a deny on `data/secret/**`
misses `data/secret/.env`) and `keyMatch` matches prefixes across directory
boundaries (`notebooks/alice*` hits `notebooks/alice2/x`). This matcher avoids both:

- `*` matches any run of characters inside one path segment (dotfiles included),
  `?` exactly one character; neither crosses `/`.
- `**` as a whole segment matches zero or more segments, so `a/**` matches `a`
  itself and everything below it, never `a2/x`.
- Every other character is literal and case-sensitive. The empty pattern matches
  only the server root ("").
- Only canonical paths can match: relative, `/`-separated, no empty, `.` or `..`
  segments. Anything else matches no rule, so such a path is always denied.
"""

from __future__ import annotations

import re
from functools import lru_cache

WILDCARDS = ("*", "?")
_ANY_SEGMENTS = "**"


def is_canonical(path: str) -> bool:
    """True for the only form of path the server ever asks about."""
    if not isinstance(path, str):
        return False
    if path == "":
        return True
    return all(segment not in ("", ".", "..") for segment in path.split("/"))


def literal_prefix(pattern: str) -> tuple[str, ...]:
    """The leading segments of `pattern` without wildcards: every match starts with them."""
    if pattern == "":
        return ()
    prefix = []
    for segment in pattern.split("/"):
        if any(wildcard in segment for wildcard in WILDCARDS):
            break
        prefix.append(segment)
    return tuple(prefix)


@lru_cache(maxsize=65536)
def compile_pattern(pattern: str) -> re.Pattern[str]:
    """A regex over the path written with a leading '/' per segment (the root is "")."""
    regex = []
    previous = None
    for segment in pattern.split("/") if pattern else ():
        if segment == _ANY_SEGMENTS:
            # Adjacent `**` mean the same as one; collapsing them avoids needless backtracking.
            if previous != _ANY_SEGMENTS:
                regex.append(r"(?:/[^/]+)*")
        else:
            regex.append("/" + _segment_regex(segment))
        previous = segment
    return re.compile("".join(regex))


def _segment_regex(segment: str) -> str:
    # The lookahead keeps a bare `*` from matching an empty segment.
    parts = ["(?=[^/])"]
    for char in segment:
        if char == "*":
            parts.append("[^/]*")
        elif char == "?":
            parts.append("[^/]")
        else:
            parts.append(re.escape(char))
    return "".join(parts)


def matches(compiled: re.Pattern[str], path: str) -> bool:
    """Match a compiled pattern against a path already known to be canonical."""
    return compiled.fullmatch("/" + path if path else "") is not None


def path_match(path: str, pattern: str) -> bool:
    """The `pathMatch(r.obj, p.obj)` function of the policy model."""
    if not isinstance(pattern, str) or not is_canonical(path):
        return False
    return matches(compile_pattern(pattern), path)


def pattern_problem(pattern: str) -> str | None:
    """Why `pattern` can never match a canonical path, or None if it can."""
    if pattern == "":
        return None
    if pattern.startswith("/"):
        return "patterns are relative to the server root: drop the leading '/'"
    segments = pattern.split("/")
    if any(segment == "" for segment in segments):
        return "empty path segment ('//' or a trailing '/')"
    if any(segment in (".", "..") for segment in segments):
        return "'.' and '..' segments never occur in canonical paths"
    return None


def pattern_warning(pattern: str) -> str | None:
    """Legal but probably not what the author meant."""
    for segment in pattern.split("/"):
        if "**" in segment and segment != _ANY_SEGMENTS:
            return f"'**' inside the segment {segment!r} acts like '*' (it does not cross '/')"
    return None
