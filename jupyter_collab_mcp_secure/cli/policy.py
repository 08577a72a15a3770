"""`jupyter collab-mcp policy check|explain`: validate a policy, and ask why a decision is what it is.

Exit codes (also in docs/policies.md):
  check:   0 valid, no findings; 1 valid but with warnings; 2 usage error; 3 the server would refuse it
  explain: 0 allowed; 1 denied; 2 usage error; 3 the policy or model cannot be loaded
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

from ..identity.principal import Principal
from ..policy.check import analyze
from ..policy.explain import explain, render
from ..policy.glob import is_canonical
from ..policy.source import ERROR, PolicyError, bundled_policies_dir, load_files
from ..registry import ACTIONS
from . import policy_admin, policy_store
from .policy_layers import explain_with_owner, run_check_with_owner

CLEAN, WARNINGS, USAGE, INVALID = 0, 1, 2, 3
ALLOWED, DENIED = 0, 1


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    policy = subparsers.add_parser("policy", help="check and explain access policies")
    commands = policy.add_subparsers(dest="command", required=True)
    default_model = str(bundled_policies_dir() / "model.conf")

    check = commands.add_parser(
        "check",
        help="validate a policy file",
        description=(
            "Report syntax errors, unknown actions or subjects, patterns and roles that can never "
            "match, and allow rules shadowed by a deny. Exit 0: clean; 1: warnings only; "
            "2: usage error; 3: errors (the server would refuse this file and keep its last good policy)."
        ),
    )
    check.add_argument("policy", help="the policy CSV file")
    check.add_argument("--model", default=default_model, help="the Casbin model (default: bundled)")
    check.add_argument("--owner-policy", help="also check this owner file layered on POLICY (the baseline)")
    check.set_defaults(run=lambda args: run_check_with_owner(args, run_check))

    why = commands.add_parser(
        "explain",
        help="decide one request and show every rule behind the decision",
        description="Exit 0: allowed; 1: denied; 2: usage error; 3: the policy or model does not load.",
    )
    why.add_argument("user", help="the user name")
    why.add_argument("action", choices=ACTIONS, help="the action asked for")
    why.add_argument("path", help="a canonical path relative to the server root ('' for the root)")
    why.add_argument("--group", action="append", default=[], help="a group of the user (repeatable)")
    why.add_argument("--agent", help="the agent (client) id the request carries")
    why.add_argument(
        "--owner",
        action="store_true",
        help="the principal is the server's owner (role:owner)",
    )
    why.add_argument("--model", default=default_model, help="the Casbin model (default: bundled)")
    why.add_argument(
        "--policy",
        default=str(bundled_policies_dir() / "policy.csv"),
        help="the policy CSV (default: bundled)",
    )
    why.add_argument(
        "--owner-policy",
        help="an owner file layered on --policy (the baseline): the output says which layer decided",
    )
    why.add_argument(
        "--owner-name",
        default=os.environ.get("JUPYTERHUB_USER") or getpass.getuser(),
        help="the server owner's user name, whose baseline grants cap the owner file (default: as the server)",
    )
    why.set_defaults(run=run_explain)
    policy_admin.add_parsers(commands, default_model)
    policy_store.add_parsers(commands, default_model)


def run_check(args: argparse.Namespace) -> int:
    try:
        snapshot = load_files(args.model, args.policy)
    except PolicyError as error:
        for finding in error.findings:
            print(f"{args.policy}: {finding}", file=sys.stderr)
        errors = sum(1 for finding in error.findings if finding.severity == ERROR)
        print(
            f"{args.policy}: INVALID ({errors} error(s)); the server would keep its last good policy",
            file=sys.stderr,
        )
        return INVALID
    findings = analyze(snapshot)
    for finding in findings:
        print(f"{args.policy}: {finding}")
    summary = f"{len(snapshot.rules)} rules, {len(snapshot.links)} role links, sha256 {snapshot.sha256}"
    if findings:
        print(f"{args.policy}: valid with {len(findings)} warning(s); {summary}")
        return WARNINGS
    print(f"{args.policy}: OK; {summary}")
    return CLEAN


def run_explain(args: argparse.Namespace) -> int:
    if not is_canonical(args.path) or "\\" in args.path:
        print(
            f"path {args.path!r} is not canonical: give it relative to the server root, "
            "with '/' separators and no '.', '..' or empty segments ('' is the root)",
            file=sys.stderr,
        )
        return USAGE
    try:
        snapshot = load_files(args.model, args.policy)
    except PolicyError as error:
        print(f"cannot load the policy: {error}", file=sys.stderr)
        return INVALID
    principal = Principal(
        user=args.user,
        auth="cli",
        realm="cli",
        groups=tuple(args.group),
        agent=args.agent,
        is_owner=args.owner,
    )
    if args.owner_policy:
        return explain_with_owner(args, snapshot, principal.subjects)
    explanation = explain(snapshot, principal.subjects, args.action, args.path)
    print(f"policy: {Path(args.policy)} (sha256 {snapshot.sha256})")
    print(render(explanation))
    return ALLOWED if explanation.allowed else DENIED
