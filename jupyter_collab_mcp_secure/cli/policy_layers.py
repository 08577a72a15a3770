"""The owner-file side of `jupyter collab-mcp policy check|explain` (`--owner-policy`): which layer decided."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from ..policy.check import analyze
from ..policy.layers import OwnerPolicy, load_owner_policy, owner_subjects
from ..policy.layers_explain import explain_layers, render_layers
from ..policy.source import ERROR, Finding, PolicyError, PolicySnapshot

CLEAN, WARNINGS, INVALID = 0, 1, 3
ALLOWED, DENIED = 0, 1


def run_check_with_owner(args: argparse.Namespace, run_check: Callable[[argparse.Namespace], int]) -> int:
    """The baseline, then the owner file layered on it; the worse exit code of the two."""
    code = run_check(args)
    return max(code, _check_owner(args.owner_policy)) if args.owner_policy else code


def _check_owner(path: str) -> int:
    """The owner file as the server would layer it: errors, ignored lines, then the usual findings."""
    try:
        owner = _load_owner(path)
    except PolicyError as error:
        for finding in error.findings:
            print(f"{path}: {finding}", file=sys.stderr)
        print(f"{path}: INVALID owner file; the server would keep its last good owner rules", file=sys.stderr)
        return INVALID
    findings = [*owner.ignored, *analyze(owner.snapshot)]
    for finding in sorted(findings, key=lambda finding: finding.line or 0):
        print(f"{path}: {finding}")
    rules = owner.snapshot
    summary = f"{len(rules.rules)} rules, {len(rules.links)} role links, sha256 {rules.sha256} (owner layer)"
    if findings:
        print(f"{path}: valid with {len(findings)} warning(s); {summary}")
        return WARNINGS
    print(f"{path}: OK; {summary}")
    return CLEAN


def explain_with_owner(args: argparse.Namespace, baseline: PolicySnapshot, subjects: tuple[str, ...]) -> int:
    try:
        owner = _load_owner(args.owner_policy)
    except PolicyError as error:
        print(f"cannot load the owner file: {error}", file=sys.stderr)
        return INVALID
    explanation = explain_layers(baseline, owner, owner_subjects(args.owner_name), subjects, args.action, args.path)
    print(f"baseline: {Path(args.policy)} (sha256 {baseline.sha256})")
    print(f"owner file: {Path(args.owner_policy)} (sha256 {owner.snapshot.sha256}), owner {args.owner_name}")
    print(render_layers(explanation))
    return ALLOWED if explanation.allowed else DENIED


def _load_owner(path: str) -> OwnerPolicy:
    # The server treats a missing owner file as "no owner rules"; asked about one by name, it is an error.
    owner = load_owner_policy(path)
    if owner is None:
        raise PolicyError(path, [Finding(ERROR, None, "no such file")])
    return owner
