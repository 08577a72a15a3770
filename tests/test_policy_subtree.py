"""The folder rule: an action on a folder and on everything that could be beneath it, decided on the policy."""

from __future__ import annotations

import pytest
from policy_fixtures import MODEL, principal

from jupyter_collab_mcp_secure.policy.engine import PolicyEngine
from jupyter_collab_mcp_secure.policy.subtree import covers_subtree

CASES = [
    # (allows, denies, folder, covered)
    (["projects/**"], [], "projects/acme", True),
    (["projects/**"], ["projects/acme/secrets/**"], "projects/acme", False),
    (["projects/**"], ["projects/acme/secrets/**"], "projects/other", True),
    (["projects/**"], ["projects/*/secrets"], "projects", False),
    (["projects/**"], ["projects/*/secrets"], "projects/a/secrets2", True),
    (["**"], ["**/.env"], "x", False),
    (["**"], ["a/b"], "a/c", True),
    (["**"], ["a/b"], "a", False),
    (["projects/*"], [], "projects", False),  # only the direct children
    (["projects/*/**"], [], "projects", True),
    (["projects/*/**"], [], "", False),
    (["a/**/z"], [], "a", False),
    (["**/*"], [], "a", True),
    ([], [], "a", False),
]


@pytest.mark.parametrize(("allows", "denies", "folder", "covered"), CASES)
def test_covers_subtree(allows, denies, folder, covered):
    assert covers_subtree(allows, denies, folder) is covered


def test_a_deep_deny_is_found_without_walking_anything():
    folder = "/".join(f"l{level}" for level in range(500))
    assert not covers_subtree(["**"], ["l0/**/l499/secret/**"], folder)
    assert not covers_subtree(["**"], ["l0/**/secret/**"], "l0")
    assert covers_subtree(["**"], ["l0/**/l499/secret/**"], "other/" + folder)


def test_the_engine_decides_folders_with_roles_and_agents(tmp_path):
    policy = tmp_path / "p.csv"
    policy.write_text(
        "p, role:editor, projects/**, write, allow\n"
        "g, alice, role:editor\n"
        "p, agent:bot, projects/acme/secrets/**, read, deny\n"
        "p, alice, projects/acme/keys/**, write, deny\n"
    )
    engine = PolicyEngine(MODEL, policy)
    alice, bot = principal("alice"), principal("alice", agent="bot")
    assert engine.allowed_subtree(alice, "read", "projects/acme")  # the write deny does not refuse reading
    assert not engine.allowed_subtree(alice, "write", "projects/acme")
    assert engine.allowed_subtree(alice, "write", "projects/other")
    assert not engine.allowed_subtree(bot, "read", "projects/acme")
    assert engine.allowed_subtree(bot, "write", "projects/other")
    assert not engine.allowed_subtree(principal("stranger"), "read", "projects/other")
