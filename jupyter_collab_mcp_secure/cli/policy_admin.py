"""`jupyter collab-mcp policy test`: an admin's expected decisions, checked against a policy.

Exit codes (also in docs/admin.md): 0 every test passes; 1 some fail; 2 a file is unusable
(the policy, the owner file or the tests file does not load).
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import textwrap

from ..policy.layers import OwnerPolicy, load_owner_policy, owner_subjects
from ..policy.source import ERROR, Finding, PolicyError, load_files
from ..policy.testing import UnusableTestsFile, parse_tests, run_tests

PASSED, FAILED, UNUSABLE = 0, 1, 2


def add_parsers(commands: argparse._SubParsersAction, default_model: str) -> None:
    test = commands.add_parser(
        "test",
        help="check a policy against expected decisions kept in a CSV file",
        description=(
            "Rows of TESTS: subjects,path,action,expected (subjects separated by '|', e.g. bob|group:team; "
            "expected allow or deny; '#' comments). Prints every failure with the rules that decided. "
            "Exit 0: all pass; 1: some fail; 2: a file is unusable."
        ),
    )
    test.add_argument("policy", help="the policy CSV file (the baseline when --owner-policy is given)")
    test.add_argument("tests", help="the tests CSV file")
    test.add_argument("--model", default=default_model, help="the Casbin model (default: bundled)")
    test.add_argument("--owner-policy", help="an owner file layered on POLICY, decided as the server would")
    test.add_argument(
        "--owner-name",
        default=os.environ.get("JUPYTERHUB_USER") or getpass.getuser(),
        help="the server owner's user name, whose baseline grants cap the owner file (default: as the server)",
    )
    test.set_defaults(run=run_test)


def run_test(args: argparse.Namespace) -> int:
    try:
        baseline = load_files(args.model, args.policy)
        owner = _owner(args.owner_policy)
    except PolicyError as error:
        print(f"cannot load the policy: {error}", file=sys.stderr)
        return UNUSABLE
    try:
        with open(args.tests, encoding="utf-8") as handle:
            tests = parse_tests(handle.read(), args.tests)
    except (OSError, UnicodeDecodeError) as error:
        print(f"cannot read the tests: {error}", file=sys.stderr)
        return UNUSABLE
    except UnusableTestsFile as error:
        for problem in error.problems:
            print(f"{args.tests}: {problem}", file=sys.stderr)
        return UNUSABLE
    outcomes = run_tests(tests, baseline, owner, owner_subjects(args.owner_name))
    failures = [outcome for outcome in outcomes if not outcome.passed]
    for outcome in failures:
        got = "allow" if outcome.allowed else "deny"
        print(
            f"{args.tests} line {outcome.test.line}: FAIL: expected {outcome.test.expected}, got {got}: "
            f"{outcome.test.describe()}"
        )
        print(textwrap.indent(outcome.explanation, "    "))
    layered = f" with owner file {args.owner_policy} (owner {args.owner_name})" if owner else ""
    print(
        f"{args.tests}: {len(outcomes)} tests, {len(outcomes) - len(failures)} passed, {len(failures)} failed "
        f"against {args.policy} (sha256 {baseline.sha256}){layered}"
    )
    return FAILED if failures else PASSED


def _owner(path: str | None) -> OwnerPolicy | None:
    if path is None:
        return None
    owner = load_owner_policy(path)
    if owner is None:
        # The server runs without owner rules when the file is missing; named here, it must exist.
        raise PolicyError(path, [Finding(ERROR, None, "no such file")])
    return owner
