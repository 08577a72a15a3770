"""The functions the policy model's matcher calls, and how to give them to an Enforcer.

The fast engine evaluates exactly these functions; the differential test runs a
plain `casbin.Enforcer` with the same model and these same functions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import casbin

from ..registry import ACTIONS, ADMIN, EXECUTE, READ, WRITE
from .glob import path_match

# What a grant of each action also grants (DESIGN.md): admin implies all,
# write and execute each imply read.
GRANTS: dict[str, frozenset[str]] = {
    ADMIN: frozenset(ACTIONS),
    WRITE: frozenset({WRITE, READ}),
    EXECUTE: frozenset({EXECUTE, READ}),
    READ: frozenset({READ}),
}

ALLOW, DENY = "allow", "deny"
EFFECTS = (ALLOW, DENY)


def implies(granted: str, requested: str) -> bool:
    """`implies(p.act, r.act)` for allow rules; deny rules ask it the other way round,
    so a deny of `read` also refuses write, execute and admin, which include reading."""
    return granted == requested or requested in GRANTS.get(granted, ())


def as_subjects(request_subject: str | Iterable[str]) -> tuple[str, ...]:
    """The request's subject is the principal's whole subject tuple; a bare name is one subject."""
    if isinstance(request_subject, str):
        return (request_subject,)
    return tuple(request_subject)


def subject_match_for(enforcer: casbin.Enforcer) -> Callable[[object, str], bool]:
    """`subjectMatch(r.sub, p.sub)`: some subject of the principal is, or has the role, `p.sub`."""

    def subject_match(request_subject: object, policy_subject: str) -> bool:
        role_manager = enforcer.get_role_manager()
        return any(role_manager.has_link(subject, policy_subject) for subject in as_subjects(request_subject))

    return subject_match


def register_functions(enforcer: casbin.Enforcer) -> casbin.Enforcer:
    enforcer.add_function("subjectMatch", subject_match_for(enforcer))
    enforcer.add_function("pathMatch", path_match)
    enforcer.add_function("implies", implies)
    return enforcer
