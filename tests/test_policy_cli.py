"""`jupyter collab-mcp policy check|explain`: output and exit codes."""

from __future__ import annotations

import pytest
from policy_fixtures import EXAMPLES

from jupyter_collab_mcp_secure.cli.main import main


def run(capsys, *argv):
    code = main(["policy", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def write(tmp_path, text):
    path = tmp_path / "policy.csv"
    path.write_text(text)
    return str(path)


def test_check_clean(capsys):
    code, out, _ = run(capsys, "check", str(EXAMPLES / "hub-team.csv"))
    assert code == 0
    assert "OK; 3 rules, 1 role links, sha256 " in out


def test_check_errors_exit_3_and_name_every_line(tmp_path, capsys):
    policy = write(
        tmp_path,
        "p, alice, a/**, raed, allow\n"
        "p, gruop:x, a/**, read, allow\n"
        "p, bob, /abs/**, read, allow\n"
        "p, bob, a/**, read, maybe\n"
        "p, bob, a/**\n",
    )
    code, _, err = run(capsys, "check", policy)
    assert code == 3
    assert "line 1: unknown action 'raed'" in err
    assert "line 2: unknown subject kind 'gruop:'" in err
    assert "line 3: pattern '/abs/**' can never match" in err
    assert "line 4: unknown effect 'maybe'" in err
    assert "line 5: 'p' needs 4 fields" in err
    assert "INVALID (5 error(s))" in err


def test_check_warnings_exit_1(tmp_path, capsys):
    policy = write(
        tmp_path,
        "p, role:owner, **, admin, allow\n"
        "p, role:ghost, a/**, read, allow\n"  # nobody can hold it
        "p, alice, notes/x/**, write, allow\n"  # shadowed by line 5
        "p, alice, notes/x/**, write, allow\n"  # duplicate
        "p, alice, notes/**, read, deny\n"
        "p, bob, a**b, read, allow\n",
    )
    code, out, _ = run(capsys, "check", policy)
    assert code == 1
    assert "line 2: no principal can hold 'role:ghost'" in out
    assert "line 3: never allows anything: shadowed by the deny on line 5" in out
    assert "line 4: duplicate of line 3" in out
    assert "line 6: '**' inside the segment 'a**b' acts like '*'" in out


def test_a_role_granted_by_g_is_not_reported(tmp_path, capsys):
    policy = write(tmp_path, "p, role:editor, a/**, write, allow\ng, alice, role:editor\n")
    code, out, _ = run(capsys, "check", policy)
    assert (code, "role:editor" in out) == (0, False)


def test_check_unreadable_file_exit_3(tmp_path, capsys):
    code, _, err = run(capsys, "check", str(tmp_path / "missing.csv"))
    assert code == 3 and "cannot read policy" in err


def test_usage_error_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["policy", "explain", "alice", "fly", "a"])
    assert exit_info.value.code == 2


def test_explain_allow_lists_the_rule_and_the_g_chain(capsys):
    code, out, _ = run(
        capsys,
        "explain",
        "dave",
        "read",
        "shared/x.ipynb",
        "--policy",
        str(EXAMPLES / "hub-team.csv"),
    )
    assert code == 0
    assert "ALLOW: read on shared/x.ipynb" in out
    assert "line 10: p, group:team, shared/**, write, allow" in out
    assert "applies through dave -> group:team (line 13)" in out
    assert "write grants read" in out


def test_explain_deny_lists_deny_and_allow_rules(capsys):
    code, out, _ = run(
        capsys,
        "explain",
        "alice",
        "write",
        "notebooks/alice/a.ipynb",
        "--agent",
        "scraper",
        "--group",
        "team",
        "--policy",
        str(EXAMPLES / "cut-off-agent.csv"),
    )
    assert code == 1
    assert "DENY: write on notebooks/alice/a.ipynb" in out
    assert "because an explicit deny matches" in out
    assert "line 9: p, agent:scraper, **, read, deny" in out
    assert "read is implied by write" in out
    assert "line 6: p, alice, notebooks/alice/**, write, allow" in out


def test_explain_default_deny(capsys):
    code, out, _ = run(capsys, "explain", "alice", "read", "")
    assert code == 1 and "no rule grants it (default deny)" in out
    code, out, _ = run(capsys, "explain", "alice", "admin", "x/.env", "--owner")
    assert code == 0 and "applies through role:owner" in out


def test_explain_refuses_non_canonical_paths(capsys):
    code, _, err = run(capsys, "explain", "alice", "read", "/etc/../x")
    assert code == 2 and "not canonical" in err


def test_explain_on_an_invalid_policy_exit_3(tmp_path, capsys):
    code, _, err = run(capsys, "explain", "alice", "read", "a", "--policy", write(tmp_path, "p, a\n"))
    assert code == 3 and "cannot load the policy" in err


def test_a_role_without_the_role_prefix_is_reported(tmp_path, capsys):
    policy = write(tmp_path, "p, editor, a/**, write, allow\ng, alice, editor\ng, bob, group:team\n")
    code, out, _ = run(capsys, "check", policy)
    assert code == 1
    assert "line 2: 'editor' is used as a role but lacks the 'role:' prefix" in out
    assert "line 3" not in out
