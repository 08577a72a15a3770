"""The default policy and every example in policies/examples/, decided through the engine."""

from __future__ import annotations

import pytest
from policy_fixtures import EXAMPLES, MODEL, principal

from jupyter_collab_mcp_secure.policy.engine import PolicyEngine
from jupyter_collab_mcp_secure.policy.source import bundled_policies_dir


def engine_for(name: str) -> PolicyEngine:
    return PolicyEngine(MODEL, EXAMPLES / name)


def test_default_policy_owner_has_everything_nobody_else_anything():
    engine = PolicyEngine(MODEL, bundled_policies_dir() / "policy.csv")
    owner = principal("me", owner=True)
    stranger = principal("alice", groups=("team",), agent="bot")
    for action in ("read", "write", "execute", "admin"):
        for path in ("", "a.ipynb", "deep/.env", "x/y/z"):
            assert engine.allowed(owner, action, path)
            assert not engine.allowed(stranger, action, path)


def test_hub_team_shares_one_folder():
    engine = engine_for("hub-team.csv")
    member = principal("erin", groups=("team",))
    linked = principal("dave")  # in the team through a g line
    outsider = principal("frank", groups=("team2",))
    for who in (member, linked):
        assert engine.allowed(who, "write", "shared/report.ipynb")
        assert engine.allowed(who, "read", "shared/.hidden")
        assert engine.allowed(who, "read", "")  # the root listing
        assert not engine.allowed(who, "read", "private/x.ipynb")
        assert not engine.allowed(who, "write", "")
        assert not engine.allowed(who, "execute", "shared/report.ipynb")
        assert not engine.allowed(who, "admin", "shared/report.ipynb")
        assert not engine.allowed(who, "write", "shared2/x")
    assert not engine.allowed(outsider, "read", "shared/report.ipynb")
    assert engine.allowed(principal("me", owner=True), "admin", "shared/report.ipynb")


def test_reviewer_reads_everything_changes_nothing():
    engine = engine_for("reviewer.csv")
    carol = principal("carol")
    assert engine.allowed(carol, "read", "notebooks/a.ipynb")
    assert engine.allowed(carol, "read", "")
    for action in ("write", "execute", "admin"):
        assert not engine.allowed(carol, action, "notebooks/a.ipynb")
    assert not engine.allowed(carol, "read", "project/.env")
    assert not engine.allowed(carol, "read", ".env")


def test_agent_limited_to_one_folder_without_execute():
    engine = engine_for("agent-one-folder.csv")
    agent = principal("agent-runner", agent="report-writer")
    assert engine.allowed(agent, "write", "reports/q3.ipynb")
    assert engine.allowed(agent, "read", "reports")
    assert not engine.allowed(agent, "execute", "reports/q3.ipynb")
    assert not engine.allowed(agent, "read", "notebooks/x.ipynb")
    assert not engine.allowed(agent, "write", "reports2/x")
    assert not engine.allowed(agent, "admin", "reports/q3.ipynb")
    # Even on the owner's token, the agent id keeps execute away.
    owner_agent = principal("me", agent="report-writer", owner=True)
    assert not engine.allowed(owner_agent, "execute", "reports/q3.ipynb")
    assert engine.allowed(principal("me", owner=True), "execute", "reports/q3.ipynb")


def test_cutting_off_one_agent_leaves_its_user_and_other_agents_alone():
    engine = engine_for("cut-off-agent.csv")
    alice = principal("alice", groups=("team",))
    scraper = principal("alice", groups=("team",), agent="scraper")
    helper = principal("alice", groups=("team",), agent="helper")
    for who in (alice, helper):
        assert engine.allowed(who, "write", "notebooks/alice/a.ipynb")
        assert engine.allowed(who, "execute", "notebooks/alice/a.ipynb")
        assert engine.allowed(who, "write", "shared/x.txt")
    for action in ("read", "write", "execute", "admin"):
        assert not engine.allowed(scraper, action, "notebooks/alice/a.ipynb")
        assert not engine.allowed(scraper, action, "shared/x.txt")
    # The owner with that agent id is cut off too: deny wins over admin.
    assert not engine.allowed(principal("me", agent="scraper", owner=True), "read", "x")


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.csv") if not p.name.endswith(".tests.csv")))
def test_every_example_is_clean(name):
    from jupyter_collab_mcp_secure.policy.check import analyze

    assert analyze(engine_for(name).snapshot) == []
