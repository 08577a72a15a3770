"""The path matcher at directory boundaries, for dotfiles, and for non-canonical paths."""

from __future__ import annotations

import pytest

from jupyter_collab_mcp_secure.policy.glob import (
    is_canonical,
    literal_prefix,
    path_match,
    pattern_problem,
)

MATCHES = [
    ("data/secret/.env", "data/secret/**"),
    ("data/secret/deep/.git/config", "data/secret/**"),
    ("notebooks/alice", "notebooks/alice/**"),
    ("notebooks/alice/x.ipynb", "notebooks/alice/**"),
    ("", "**"),
    ("", ""),
    ("x", "**"),
    ("a/b", "a/**/b"),
    ("a/x/y/b", "a/**/b"),
    ("b", "**/b"),
    ("d/.env", "**/.env"),
    (".ipynb", "*.ipynb"),
    ("nb.ipynb", "*.ipynb"),
    ("abc", "a?c"),
    ("a[1]", "a[1]"),
    ("a/b", "a/**/**/b"),
]
MISSES = [
    ("notebooks/alice2/x", "notebooks/alice/**"),
    ("notebooks/alice2", "notebooks/alice/**"),
    ("Notebooks/alice/x", "notebooks/alice/**"),
    ("", "*"),
    ("a", ""),
    ("d/nb.ipynb", "*.ipynb"),
    ("ac", "a?c"),
    ("ab", "a/**/b"),
    ("a/b/c", "a/**/b"),
    # Non-canonical strings never match, even under `**`: the server refuses them first.
    ("a/../b", "a/**"),
    ("../etc/passwd", "**"),
    ("/abs", "**"),
    ("a//b", "**"),
    ("./a", "**"),
    ("a/", "a/**"),
]


@pytest.mark.parametrize(("path", "pattern"), MATCHES)
def test_matches(path, pattern):
    assert path_match(path, pattern)


@pytest.mark.parametrize(("path", "pattern"), MISSES)
def test_misses(path, pattern):
    assert not path_match(path, pattern)


def test_canonical_paths():
    assert is_canonical("") and is_canonical("a/.b/c")
    assert not any(is_canonical(p) for p in ["/a", "a/", "a//b", ".", "..", "a/./b", "a/../b"])


def test_literal_prefix_stops_at_first_wildcard():
    assert literal_prefix("a/b/*.ipynb/c") == ("a", "b")
    assert literal_prefix("**") == ()
    assert literal_prefix("") == ()
    assert literal_prefix("a/b") == ("a", "b")


@pytest.mark.parametrize("pattern", ["/notebooks/**", "a//b", "a/", "a/../b", "./a"])
def test_patterns_that_can_never_match_are_reported(pattern):
    assert pattern_problem(pattern)


@pytest.mark.parametrize("pattern", ["", "**", "a/**", "*.ipynb", "a/**/b"])
def test_good_patterns_have_no_problem(pattern):
    assert pattern_problem(pattern) is None


def test_wildcards_within_a_segment():
    assert path_match("x/backup-1-2-3.sql", "**/backup-*-*-*.sql")
    assert not path_match("x/backup-1-2.sql", "**/backup-*-*-*.sql")
    assert path_match("a-b", "*-*") and not path_match("ab", "*-*")
    assert path_match("aXbYa", "a*?a") and not path_match("aa", "a*?a")
    assert path_match("abcabc", "*abc") and path_match("abab", "ab*ab") and not path_match("aba", "ab*ab")


def test_paths_beyond_the_length_limits_are_never_canonical():
    assert is_canonical("a/" * 2047 + "b")  # 4095 bytes
    assert not is_canonical("a/" * 2048 + "bb")
    assert is_canonical("x" * 255) and not is_canonical("x" * 256)
    assert not is_canonical("é" * 128)  # 256 bytes in UTF-8
    assert not path_match("x" * 256, "**")


@pytest.mark.timeout(30)
def test_matching_does_not_backtrack_on_long_paths():
    # The regex this replaced took minutes on this path (a backtracking blow-up per segment).
    pattern = "**/backup-*-*-*-*-*.sql"
    path = "/".join(["backup-" + "-" * 240 + "x"] * 16)
    assert is_canonical(path)
    for _ in range(100):
        assert not path_match(path, pattern)
    assert path_match(path + "/backup-1-2-3-4-5.sql", pattern)
