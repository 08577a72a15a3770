"""Files the extension trusts are refused at startup when Jupyter would serve them (and so let anyone rewrite them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from jupyter_collab_mcp_secure.trusted_files import ServedTrustedFile, refuse_served_trusted_files, served_path


def test_served_paths_are_visible_ones_inside_the_root(tmp_path: Path) -> None:
    root = tmp_path / "home"
    (root / ".jupyter").mkdir(parents=True)
    (root / "work").mkdir()
    assert served_path(root / "work" / "policy.csv", root, allow_hidden=False) == "work/policy.csv"
    assert served_path(root / ".jupyter" / "policy.csv", root, allow_hidden=False) is None
    assert served_path(root / ".jupyter" / "policy.csv", root, allow_hidden=True) == ".jupyter/policy.csv"
    assert served_path(tmp_path / "etc" / "policy.csv", root, allow_hidden=False) is None
    # A hidden name that is a symlink into a served folder is judged by where it leads.
    (root / ".link").symlink_to(root / "work")
    assert served_path(root / ".link" / "policy.csv", root, allow_hidden=False) == "work/policy.csv"


def test_the_refusal_names_the_setting_and_where_to_put_it(tmp_path: Path) -> None:
    with pytest.raises(
        ServedTrustedFile, match=r"CollabMCP.policy_file .* lies in the served root at 'p.csv'.*/etc/jupyter"
    ):
        refuse_served_trusted_files([("CollabMCP.policy_file", tmp_path / "p.csv")], tmp_path, allow_hidden=False)


@pytest.mark.parametrize(
    ("name", "section", "trait", "where", "extra"),
    [
        ("policy", "CollabMCP", "policy_file", "policy.csv", {}),
        ("state", "CollabMCP", "state_dir", ".collab-state", {"ContentsManager": {"allow_hidden": True}}),
    ],
)
def test_a_server_with_a_trusted_file_at_a_served_path_refuses_to_start(
    server_factory, tmp_path, name, section, trait, where, extra
) -> None:
    root = tmp_path / name / "root"
    target = root / where
    if trait == "policy_file":
        root.mkdir(parents=True)
        target.write_text("p, role:owner, **, admin, allow\n")
    with pytest.raises(RuntimeError, match="jupyter server exited") as refused:
        server_factory(name=name, config={section: {trait: str(target)}, **extra})
    assert f"refusing to start: CollabMCP.{trait}" in str(refused.value)
    assert "Put it outside" in str(refused.value)
