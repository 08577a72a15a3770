"""Path patterns for policy rules, matched segment by segment in time linear in the path.

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
  segments, at most MAX_PATH_BYTES in all and MAX_SEGMENT_BYTES per segment.
  Anything else matches no rule, so such a path is always denied.

Callers choose the paths, so matching must not backtrack: a regex such as
`(?:/[^/]+)*/backup-[^/]*-[^/]*-[^/]*\\.sql` takes seconds to minutes on a 4 kB
path. Here a pattern is a sequence of segment matchers run as a set of positions
(a small NFA), and each segment is matched greedily, piece by piece between its
`*`s: the work is bounded by path length x pattern length.
"""

from __future__ import annotations

from functools import lru_cache

WILDCARDS = ("*", "?")
_ANY_SEGMENTS = "**"
# Linux limits (PATH_MAX, NAME_MAX): no real file has a longer name.
MAX_PATH_BYTES = 4096
MAX_SEGMENT_BYTES = 255


def path_problem(path: str) -> str | None:
    """Why `path` is too long to be a real path, or None."""
    encoded = path.encode("utf-8", "surrogatepass")
    if len(encoded) > MAX_PATH_BYTES:
        return f"path is longer than {MAX_PATH_BYTES} bytes"
    if any(len(segment) > MAX_SEGMENT_BYTES for segment in encoded.split(b"/")):
        return f"a path segment is longer than {MAX_SEGMENT_BYTES} bytes"
    return None


def is_canonical(path: str) -> bool:
    """True for the only form of path the server ever asks about."""
    if not isinstance(path, str):
        return False
    if path == "":
        return True
    if path_problem(path):
        return False
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


class _Segment:
    """One pattern segment without `**`: literal pieces (with `?`) between `*`s."""

    __slots__ = ("pieces", "starred")

    def __init__(self, text: str) -> None:
        self.pieces = text.split("*")
        self.starred = len(self.pieces) > 1

    def matches(self, name: str) -> bool:
        pieces = self.pieces
        if not self.starred:
            return len(name) == len(pieces[0]) and _piece_at(pieces[0], name, 0)
        first, last = pieces[0], pieces[-1]
        if len(first) + len(last) > len(name):
            return False
        if not _piece_at(first, name, 0) or not _piece_at(last, name, len(name) - len(last)):
            return False
        # The leftmost place of each middle piece leaves the most room for the rest.
        position, end = len(first), len(name) - len(last)
        for piece in pieces[1:-1]:
            found = _find_piece(piece, name, position, end)
            if found < 0:
                return False
            position = found + len(piece)
        return True

    @property
    def matches_any(self) -> bool:
        """True when every non-empty segment matches (the segment is only `*`s)."""
        return self.starred and not any(self.pieces)


def _piece_at(piece: str, name: str, start: int) -> bool:
    if start + len(piece) > len(name):
        return False
    return all(char == "?" or char == name[start + offset] for offset, char in enumerate(piece))


def _find_piece(piece: str, name: str, start: int, end: int) -> int:
    if "?" not in piece:
        return name.find(piece, start, end)
    for position in range(start, end - len(piece) + 1):
        if _piece_at(piece, name, position):
            return position
    return -1


class Pattern:
    """A compiled pattern: its segments, `None` standing for `**`."""

    __slots__ = ("segments",)

    def __init__(self, pattern: str) -> None:
        segments: list[_Segment | None] = []
        for text in pattern.split("/") if pattern else ():
            if text == _ANY_SEGMENTS:
                # Adjacent `**` mean the same as one.
                if not segments or segments[-1] is not None:
                    segments.append(None)
            else:
                segments.append(_Segment(text))
        self.segments = tuple(segments)

    def _closure(self, states: set[int]) -> set[int]:
        for state in sorted(states):
            if state < len(self.segments) and self.segments[state] is None:
                states.add(state + 1)
        return states

    def states_after(self, names: list[str]) -> set[int]:
        """The pattern positions reachable after matching these leading path segments."""
        segments = self.segments
        states = self._closure({0})
        for name in names:
            following = set()
            for state in states:
                if state == len(segments):
                    continue
                segment = segments[state]
                if segment is None:
                    following.add(state)
                elif segment.matches(name):
                    following.add(state + 1)
            if not following:
                return following
            states = self._closure(following)
        return states

    def matches(self, names: list[str]) -> bool:
        return len(self.segments) in self.states_after(names)

    def rest_matches_something(self, state: int) -> bool:
        """From `state`, one or more further segments can complete a match."""
        return state < len(self.segments)

    def rest_matches_everything(self, state: int) -> bool:
        """From `state`, every sequence of one or more further segments completes a match."""
        rest = self.segments[state:]
        if None not in rest:
            return False
        starred = [segment for segment in rest if segment is not None]
        return len(starred) <= 1 and all(segment.matches_any for segment in starred)


@lru_cache(maxsize=65536)
def compile_pattern(pattern: str) -> Pattern:
    return Pattern(pattern)


def split_path(path: str) -> list[str]:
    return path.split("/") if path else []


def matches(compiled: Pattern, path: str) -> bool:
    """Match a compiled pattern against a path already known to be canonical."""
    return compiled.matches(split_path(path))


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
