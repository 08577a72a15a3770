"""A baseline policy mounted from a Kubernetes ConfigMap: an update swaps the `..data` symlink, and it is seen."""

from __future__ import annotations

import os
from pathlib import Path

from policy_fixtures import MODEL, principal

from jupyter_collab_mcp_secure.policy.engine import PolicyEngine


def configmap_version(mount: Path, name: str, text: str) -> None:
    """Write a new version the way the kubelet does: a fresh folder, then `..data` swapped atomically to it."""
    folder = mount / f"..{name}"
    folder.mkdir()
    (folder / "policy.csv").write_text(text)
    staging = mount / "..data_tmp"
    staging.symlink_to(folder.name)
    os.replace(staging, mount / "..data")


async def test_a_configmap_symlink_swap_reloads_the_policy(tmp_path: Path) -> None:
    mount = tmp_path / "collab-mcp"
    mount.mkdir()
    configmap_version(mount, "2026_12_01", "p, role:owner, **, admin, allow\n")
    (mount / "policy.csv").symlink_to("..data/policy.csv")
    engine = PolicyEngine(MODEL, mount / "policy.csv")
    bob = principal("bob")
    assert not engine.allowed(bob, "read", "shared/a.txt")
    configmap_version(mount, "2026_12_02", "p, role:owner, **, admin, allow\np, bob, shared/**, read, allow\n")
    assert await engine.poll_once() is False  # first sight of the change: wait until it is stable
    assert await engine.poll_once() is True
    assert engine.allowed(bob, "read", "shared/a.txt")
