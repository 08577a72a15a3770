"""`jupyter collab-mcp policy test`: every shipped example passes its tests; failures name the deciding rules."""

from __future__ import annotations

import pytest
from policy_fixtures import EXAMPLES

from jupyter_collab_mcp_secure.cli.main import main

POLICIES = sorted(p for p in EXAMPLES.glob("*.csv") if not p.name.endswith(".tests.csv"))
# Owner files are tested layered on their baseline, for the owner who wrote them.
LAYERED = {"layered-owner.csv": ("layered-baseline.csv", "alice")}

TEAM_POLICY = """\
p, role:owner, **, admin, allow
p, group:team, shared/**, write, allow
p, bob, shared/private/**, read, deny
"""


def run(capsys, *argv):
    code = main(["policy", "test", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.name)
def test_every_example_ships_tests_that_pass(capsys, policy):
    tests = policy.with_name(policy.name.removesuffix(".csv") + ".tests.csv")
    assert tests.is_file(), f"{policy.name} has no tests file next to it"
    if policy.name in LAYERED:
        baseline, owner = LAYERED[policy.name]
        argv = [str(EXAMPLES / baseline), str(tests), "--owner-policy", str(policy), "--owner-name", owner]
    else:
        argv = [str(policy), str(tests)]
    code, out, err = run(capsys, *argv)
    assert (code, err) == (0, ""), out
    summary = out.strip().splitlines()[-1]
    assert " 0 failed against " in summary
    assert int(summary.split(": ", 1)[1].split(" tests")[0]) >= 5


def test_failures_are_listed_with_the_rules_that_decided(tmp_path, capsys):
    policy = write(tmp_path, "team.csv", TEAM_POLICY)
    tests = write(
        tmp_path,
        "team.tests.csv",
        "# what the team may do\n"
        "subjects,path,action,expected\n"
        "\n"
        "bob|group:team,shared/a.txt,write,allow\n"
        "bob|group:team,shared/private/x.txt,read,allow\n"  # fails: the deny on line 3 wins
        '  erin | group:team , "shared/with, comma.txt" , write , ALLOW\n'
        "erin,shared/a.txt,read,allow\n",  # fails: erin has no rule without her group
    )
    code, out, err = run(capsys, policy, tests)
    assert code == 1 and err == ""
    first, second = out.split(f"{tests} line 7: ")
    assert first.startswith(
        f"{tests} line 5: FAIL: expected allow, got deny: read on shared/private/x.txt for bob, group:team"
    )
    assert "because an explicit deny matches (a deny always wins)" in first
    assert "line 3: p, bob, shared/private/**, read, deny" in first
    # The allow that lost is listed too, with how it applies.
    assert "line 2: p, group:team, shared/**, write, allow" in first
    assert "applies through group:team" in first
    assert second.startswith("FAIL: expected allow, got deny: read on shared/a.txt for erin")
    assert "no rule grants it (default deny)" in second
    assert out.strip().splitlines()[-1].startswith(f"{tests}: 4 tests, 2 passed, 2 failed against {policy} (sha256 ")


def test_a_layered_failure_says_which_layer_decided(capsys, tmp_path):
    tests = write(tmp_path, "t.csv", "carol|group:team,archive/old.ipynb,execute,allow\n")
    code, out, _ = run(
        capsys,
        str(EXAMPLES / "layered-baseline.csv"),
        tests,
        "--owner-policy",
        str(EXAMPLES / "layered-owner.csv"),
        "--owner-name",
        "alice",
    )
    assert code == 1
    assert "FAIL: expected allow, got deny: execute on archive/old.ipynb for carol, group:team" in out
    assert "owner rules grant nothing the owner lacks" in out
    assert "with owner file " in out and "(owner alice)" in out


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ("bob,shared/a.txt,raed,allow", "line 2: unknown action 'raed'"),
        ("bob,/etc/passwd,read,deny", "line 2: path '/etc/passwd' is not canonical"),
        ("bob,shared/../x,read,deny", "line 2: path 'shared/../x' is not canonical"),
        ("bob|gruop:team,shared/a.txt,read,deny", "line 2: subject 'gruop:team' is not a user name"),
        ("bob|group:,shared/a.txt,read,deny", "line 2: subject 'group:' is not a user name"),
        ("|,shared/a.txt,read,deny", "line 2: no subjects"),
        ("bob,shared/a.txt,read,maybe", "line 2: expected must be allow or deny, not 'maybe'"),
        ("bob,shared/a.txt,read", "line 2: 3 field(s), expected 4"),
    ],
)
def test_an_unusable_row_makes_the_file_unusable(tmp_path, capsys, row, problem):
    policy = write(tmp_path, "team.csv", TEAM_POLICY)
    tests = write(tmp_path, "t.csv", "bob|group:team,shared/a.txt,write,allow\n" + row + "\n")
    code, out, err = run(capsys, policy, tests)
    assert code == 2 and out == ""
    assert f"{tests}: {problem}" in err


def test_unusable_files_exit_2(tmp_path, capsys):
    policy = write(tmp_path, "team.csv", TEAM_POLICY)
    tests = write(tmp_path, "t.csv", "bob,shared/a.txt,read,deny\n")
    assert run(capsys, policy, str(tmp_path / "missing.csv"))[0] == 2
    code, _, err = run(capsys, policy, write(tmp_path, "empty.csv", "# nothing yet\n\n"))
    assert code == 2 and "no tests" in err
    code, _, err = run(capsys, write(tmp_path, "bad.csv", "p, bob, a/**, raed, allow\n"), tests)
    assert code == 2 and "unknown action 'raed'" in err
    code, _, err = run(capsys, policy, tests, "--owner-policy", str(tmp_path / "nope.csv"))
    assert code == 2 and "no such file" in err
