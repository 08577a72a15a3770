"""`jupyter collab-mcp policy test|simulate`: check a policy against expectations and against the trail.

Exit codes (also in docs/admin.md):
  test:     0 every test passes; 1 some fail; 2 a file is unusable (policy, owner file or tests file)
  simulate: 0 no recorded decision would change; 1 some would; 2 a file is unusable (policy or trail)
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import textwrap

from ..audit.report import visible
from ..audit.report_data import parse_when
from ..audit.review import Filters, read_records
from ..policy.layers import OwnerPolicy, load_owner_policy, owner_subjects
from ..policy.simulate import decider, render, simulate
from ..policy.source import ERROR, Finding, PolicyError, PolicySnapshot, load_files
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
    _add_owner_options(test, "an owner file layered on POLICY, decided as the server would")
    test.set_defaults(run=run_test)

    replay = commands.add_parser(
        "simulate",
        help="replay the decisions recorded in the audit trail against a candidate policy",
        description=(
            "Lists every recorded decision the candidate would change (allow -> deny, deny -> allow), grouped "
            "by principal, action and path, with counts, the recorded rule and the candidate's deciding rule. "
            "Exit 0: nothing would change; 1: something would; 2: a file is unusable."
        ),
    )
    replay.add_argument("policy", help="the candidate policy CSV file")
    replay.add_argument(
        "--audit",
        required=True,
        nargs="+",
        metavar="FILE",
        help="the audit files, oldest first (rotated files, then the live one; several servers' trails are fine)",
    )
    replay.add_argument("--since", type=_when, metavar="TIME", help="from this time on: ISO 8601 or 7d, 12h, 30m")
    replay.add_argument("--until", type=_when, metavar="TIME", help="before this time: ISO 8601 or 7d, 12h, 30m")
    replay.add_argument("--model", default=default_model, help="the Casbin model (default: bundled)")
    _add_owner_options(replay, "the server's owner file, layered on the candidate (the baseline) for the replay")
    replay.set_defaults(run=run_simulate)


def _add_owner_options(parser: argparse.ArgumentParser, meaning: str) -> None:
    parser.add_argument("--owner-policy", help=meaning)
    parser.add_argument(
        "--owner-name",
        default=os.environ.get("JUPYTERHUB_USER") or getpass.getuser(),
        help="the server owner's user name, whose baseline grants cap the owner file (default: as the server)",
    )


def _when(text: str):
    try:
        return parse_when(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def run_test(args: argparse.Namespace) -> int:
    loaded = _load(args)
    if loaded is None:
        return UNUSABLE
    baseline, owner = loaded
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


def run_simulate(args: argparse.Namespace) -> int:
    loaded = _load(args)
    if loaded is None:
        return UNUSABLE
    candidate, owner = loaded
    calls = Filters(since=args.since, until=args.until, events=frozenset({"tool_call", "refusals_suppressed"}))
    # Reloads before the period too: they say which policy was in force when it began.
    reloads = Filters(until=args.until, events=frozenset({"policy_reload"}))
    try:
        decide = decider(candidate, owner, owner_subjects(args.owner_name))
        result = simulate((r for r in read_records(args.audit, _warn) if calls(r) or reloads(r)), decide)
    except OSError as error:
        print(f"cannot read the trail: {error}", file=sys.stderr)
        return UNUSABLE
    print(f"candidate: {args.policy} (sha256 {candidate.sha256})")
    # Names and paths come from the trail: shown with control characters escaped.
    print("\n".join(visible(line) for line in render(result).splitlines()))
    return FAILED if result.changes else PASSED


def _warn(message: str) -> None:
    print(f"warning: {visible(message)}", file=sys.stderr)


def _load(args: argparse.Namespace) -> tuple[PolicySnapshot, OwnerPolicy | None] | None:
    """The baseline policy and owner file named on the command line; None (said on stderr) when one is unusable."""
    try:
        return load_files(args.model, args.policy), _owner(args.owner_policy)
    except PolicyError as error:
        print(f"cannot load the policy: {error}", file=sys.stderr)
        return None


def _owner(path: str | None) -> OwnerPolicy | None:
    if path is None:
        return None
    owner = load_owner_policy(path)
    if owner is None:
        # The server runs without owner rules when the file is missing; named here, it must exist.
        raise PolicyError(path, [Finding(ERROR, None, "no such file")])
    return owner
