"""Policy tests an admin keeps next to the policy: expected decisions, checked against the policy.

A tests file is CSV, one expectation a row: `subjects,path,action,expected`, the
subjects as the policy names them separated by `|` (`bob|group:team`,
`alice|role:owner`), a canonical path, an action and `allow` or `deny`. `#` starts
a comment line; blank lines are skipped; a header row with those four names is
allowed. A row that cannot be a test (unknown action, non-canonical path, ...)
makes the whole file unusable rather than a silently vacuous test.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from ..registry import ACTIONS
from .explain import explain, render
from .glob import is_canonical
from .layers import OwnerPolicy
from .layers_explain import explain_layers, render_layers
from .source import SUBJECT_KINDS, PolicySnapshot

COLUMNS = ("subjects", "path", "action", "expected")
EXPECTATIONS = ("allow", "deny")


class UnusableTestsFile(Exception):
    """The tests file cannot be used: every problem, with its line."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(f"{source}: " + "; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class PolicyTest:
    line: int
    subjects: tuple[str, ...]
    path: str
    action: str
    expected: str

    def describe(self) -> str:
        return f"{self.action} on {self.path or '(the server root)'} for {', '.join(self.subjects)}"


@dataclass(frozen=True)
class Outcome:
    test: PolicyTest
    allowed: bool
    # The rules behind the decision, rendered as `policy explain` shows them.
    explanation: str

    @property
    def passed(self) -> bool:
        return ("allow" if self.allowed else "deny") == self.test.expected


def parse_tests(text: str, source: str) -> list[PolicyTest]:
    tests: list[PolicyTest] = []
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        fields = [field.strip() for field in next(csv.reader(io.StringIO(raw), skipinitialspace=True))]
        if tuple(field.lower() for field in fields) == COLUMNS:
            continue
        try:
            tests.append(_parse_row(number, fields))
        except ValueError as error:
            problems.append(f"line {number}: {error}")
    if problems:
        raise UnusableTestsFile(source, problems)
    if not tests:
        raise UnusableTestsFile(source, ["no tests (rows: subjects,path,action,expected)"])
    return tests


def _parse_row(number: int, fields: list[str]) -> PolicyTest:
    if len(fields) != len(COLUMNS):
        raise ValueError(f"{len(fields)} field(s), expected 4: {','.join(COLUMNS)}")
    subjects_text, path, action, expected = fields
    subjects = tuple(subject.strip() for subject in subjects_text.split("|") if subject.strip())
    if not subjects:
        raise ValueError("no subjects")
    for subject in subjects:
        kind, colon, name = subject.partition(":")
        if any(char.isspace() for char in subject) or (colon and (kind not in SUBJECT_KINDS or not name)):
            kinds = ", ".join(f"{kind}:<name>" for kind in SUBJECT_KINDS)
            raise ValueError(f"subject {subject!r} is not a user name or {kinds}")
    if not is_canonical(path) or "\\" in path:
        raise ValueError(f"path {path!r} is not canonical (relative to the root, '/' separators, no '.' or '..')")
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r} (one of {', '.join(ACTIONS)})")
    if expected.lower() not in EXPECTATIONS:
        raise ValueError(f"expected must be allow or deny, not {expected!r}")
    return PolicyTest(number, subjects, path, action, expected.lower())


def run_tests(
    tests: list[PolicyTest],
    baseline: PolicySnapshot,
    owner: OwnerPolicy | None = None,
    owner_subjects: tuple[str, ...] = (),
) -> list[Outcome]:
    """Decide every test as the server would: the baseline alone, or with the owner file layered on it."""
    outcomes = []
    for test in tests:
        if owner is None:
            plain = explain(baseline, test.subjects, test.action, test.path)
            outcomes.append(Outcome(test, plain.allowed, render(plain)))
        else:
            layered = explain_layers(baseline, owner, owner_subjects, test.subjects, test.action, test.path)
            outcomes.append(Outcome(test, layered.allowed, render_layers(layered)))
    return outcomes
