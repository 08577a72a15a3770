"""`policy check|explain --owner-policy`: which layer decided, and which owner lines are ignored and why."""

from __future__ import annotations

import pytest
from policy_fixtures import EXAMPLES, MODEL, principal

from jupyter_collab_mcp_secure.cli.main import main
from jupyter_collab_mcp_secure.policy.engine import PolicyEngine

BASELINE = str(EXAMPLES / "layered-baseline.csv")
OWNER = str(EXAMPLES / "layered-owner.csv")


def run(capsys, *argv):
    code = main(["policy", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def explain(capsys, *request):
    return run(capsys, "explain", *request, "--policy", BASELINE, "--owner-policy", OWNER, "--owner-name", "alice")


def test_the_layered_examples_share_within_the_baseline():
    engine = PolicyEngine(MODEL, BASELINE, owner_policy_path=OWNER, owner="alice")
    assert engine.allowed(principal("bob"), "write", "shared/a.txt")
    assert not engine.allowed(principal("bob"), "read", "shared/secret/x.txt")
    team = principal("carol", groups=("team",))
    assert engine.allowed(team, "execute", "analysis/x.ipynb")
    assert not engine.allowed(team, "execute", "archive/x.ipynb")
    assert engine.allowed(team, "read", "archive/x.ipynb")
    helper = principal("alice", agent="notebook-helper", owner=True)
    assert not engine.allowed(helper, "execute", "analysis/x.ipynb")
    assert engine.allowed(helper, "write", "analysis/x.ipynb")


def test_explain_names_the_owner_file_when_its_share_decides(capsys):
    code, out, _ = explain(capsys, "bob", "write", "shared/a.txt")
    assert code == 0
    assert "ALLOW: write on shared/a.txt\n  decided by: the owner file\n" in out
    assert "owner file: ALLOW\n    allow rules:\n      line 4: p, bob, shared/**, write, allow" in out
    assert "the owner (alice, role:owner) in the baseline: ALLOW" in out


def test_explain_names_the_baseline_when_its_deny_decides(capsys):
    code, out, _ = explain(capsys, "bob", "read", "shared/secret/x.txt")
    assert code == 1
    assert "decided by: the baseline\n  subjects: bob\n  because a deny in the baseline matches" in out
    assert "line 7: p, bob, shared/secret/**, read, deny" in out


def test_explain_says_when_an_owner_rule_exceeds_the_owner(capsys):
    code, out, _ = explain(capsys, "carol", "execute", "archive/x.ipynb", "--group", "team")
    assert code == 1
    assert "decided by: nobody (default deny)" in out
    assert "owner rules grant nothing the owner lacks" in out
    assert "the owner (alice, role:owner) in the baseline: DENY" in out
    assert "line 5: p, role:owner, archive/**, execute, deny" in out


def test_explain_names_an_owner_deny(capsys):
    code, out, _ = explain(capsys, "alice", "execute", "analysis/x.ipynb", "--owner", "--agent", "notebook-helper")
    assert code == 1
    assert "decided by: the owner file\n" in out and "because a deny in the owner file matches" in out


def test_explain_and_check_list_ignored_owner_lines(tmp_path, capsys):
    owner = tmp_path / "owner.csv"
    owner.write_text("p, bob, shared/**, write, allow\np, role:hub-admin, **, read, deny\ng, bob, role:owner\n")
    code, out, _ = run(
        capsys, "explain", "bob", "admin", "x", "--policy", BASELINE, "--owner-policy", str(owner), "--owner-name", "a"
    )
    assert code == 1
    assert "ignored owner rules:\n    warning: line 2: ignored: owner rules may not name the reserved subject" in out
    code, out, _ = run(capsys, "check", BASELINE, "--owner-policy", str(owner))
    assert code == 1
    assert f"{owner}: warning: line 3: ignored: owner rules may not name the reserved subject 'role:owner'" in out
    assert f"{owner}: valid with 2 warning(s); 1 rules, 0 role links, sha256 " in out


@pytest.mark.parametrize(
    ("text", "expected"),
    [(None, "no such file"), ("p, bob, shared/**, scribble, allow\n", "line 1: unknown action 'scribble'")],
)
def test_check_refuses_a_bad_or_missing_owner_file(tmp_path, capsys, text, expected):
    owner = tmp_path / "owner.csv"
    if text is not None:
        owner.write_text(text)
    code, out, err = run(capsys, "check", BASELINE, "--owner-policy", str(owner))
    assert code == 3
    assert f"{BASELINE}: OK; " in out
    assert expected in err and "INVALID owner file" in err


def test_check_of_a_clean_owner_file(capsys):
    code, out, _ = run(capsys, "check", BASELINE, "--owner-policy", OWNER)
    assert code == 0
    assert f"{OWNER}: OK; 5 rules, 0 role links, sha256 " in out and "(owner layer)" in out
