"""Path canonicalization: every path is relative, POSIX, inside the root, before any policy sees it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from jupyter_collab_mcp_secure.gateway.errors import ToolFailure
from jupyter_collab_mcp_secure.gateway.paths import canonicalize


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = (tmp_path / "root").resolve()
    (root / "notebooks" / "alice").mkdir(parents=True)
    (root / "notebooks" / "alice" / "a.ipynb").write_text("{}")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_text("s")
    os.symlink(tmp_path / "outside", root / "escape")
    os.symlink(root / "notebooks" / "alice", root / "alias")
    return root


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("notebooks/alice/a.ipynb", "notebooks/alice/a.ipynb"),
        ("./notebooks//alice/./a.ipynb", "notebooks/alice/a.ipynb"),
        ("notebooks/alice/", "notebooks/alice"),
        ("", ""),
        (".", ""),
        ("notebooks/alice/new.ipynb", "notebooks/alice/new.ipynb"),
        # A link inside the root is checked as its target.
        ("alias/a.ipynb", "notebooks/alice/a.ipynb"),
    ],
)
def test_canonical_forms(root: Path, raw: str, canonical: str) -> None:
    assert canonicalize(raw, root) == canonical


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("../x", "'..'"),
        ("notebooks/../../x", "'..'"),
        ("notebooks/alice/..", "'..'"),
        ("/etc/passwd", "relative"),
        ("~/x", "relative"),
        ("C:/x", "relative"),
        ("notebooks\\alice\\a.ipynb", "separator"),
        ("a\x00b", "NUL"),
        ("escape/secret.txt", "outside"),
        ("escape", "outside"),
        ("x" * 5000, "longer"),
        (42, "string"),
        (None, "string"),
        (["a"], "string"),
    ],
)
def test_refused(root: Path, raw: object, reason: str) -> None:
    with pytest.raises(ToolFailure) as refused:
        canonicalize(raw, root)
    assert refused.value.code == "invalid_argument"
    assert reason in refused.value.message
