"""Static checks of a policy beyond what stops it loading: rules that can never take effect."""

from __future__ import annotations

from ..identity.principal import HUB_ADMIN_ROLE, OWNER_ROLE
from .explain import role_chains
from .functions import ALLOW, GRANTS, implies
from .glob import WILDCARDS, pattern_warning
from .source import WARNING, Finding, PolicySnapshot, Rule


def analyze(snapshot: PolicySnapshot) -> list[Finding]:
    findings = list(snapshot.findings)
    findings.extend(_unheld_subjects(snapshot))
    findings.extend(_unprefixed_roles(snapshot))
    findings.extend(_pattern_warnings(snapshot))
    findings.extend(_duplicates(snapshot))
    findings.extend(_shadowed(snapshot))
    return sorted(findings, key=lambda finding: (finding.line or 0, finding.message))


def _unheld_subjects(snapshot: PolicySnapshot) -> list[Finding]:
    granted_roles = {link.role for link in snapshot.links}
    return [
        Finding(
            WARNING,
            rule.line,
            f"no principal can hold {rule.subject!r}: only role:owner and role:hub-admin come from identity; "
            "other roles need a 'g, <member>, <role>' line",
        )
        for rule in snapshot.rules
        if rule.subject.startswith("role:")
        and rule.subject not in (OWNER_ROLE, HUB_ADMIN_ROLE)
        and rule.subject not in granted_roles
    ]


def _unprefixed_roles(snapshot: PolicySnapshot) -> list[Finding]:
    """A `g` target without `role:` or `group:` is also a user (or agent) name: whoever signs in
    under that name gets the role's grants, and the role's members get that user's."""
    return [
        Finding(
            WARNING,
            link.line,
            f"{link.role!r} is used as a role but lacks the 'role:' prefix: a principal named "
            f"{link.role!r} would hold it too; write 'role:{link.role.partition(':')[2] or link.role}'",
        )
        for link in snapshot.links
        if not link.role.startswith(("role:", "group:"))
    ]


def _pattern_warnings(snapshot: PolicySnapshot) -> list[Finding]:
    return [
        Finding(WARNING, rule.line, warning) for rule in snapshot.rules if (warning := pattern_warning(rule.pattern))
    ]


def _duplicates(snapshot: PolicySnapshot) -> list[Finding]:
    first_seen: dict[tuple[str, str, str, str], Rule] = {}
    findings = []
    for rule in snapshot.rules:
        key = (rule.subject, rule.pattern, rule.action, rule.effect)
        if key in first_seen:
            findings.append(Finding(WARNING, rule.line, f"duplicate of line {first_seen[key].line}"))
        else:
            first_seen[key] = rule
    return findings


def _shadowed(snapshot: PolicySnapshot) -> list[Finding]:
    denies = [rule for rule in snapshot.rules if rule.effect != ALLOW]
    findings = []
    for allow in snapshot.rules:
        if allow.effect != ALLOW:
            continue
        held = role_chains(snapshot, allow.subject)
        for deny in denies:
            if deny.subject in held and _covers(deny.pattern, allow.pattern) and _refuses_all(deny, allow):
                findings.append(
                    Finding(
                        WARNING,
                        allow.line,
                        f"never allows anything: shadowed by the deny on line {deny.line} ({deny})",
                    )
                )
                break
    return findings


def _refuses_all(deny: Rule, allow: Rule) -> bool:
    """Every action the allow grants is one the deny refuses."""
    return all(implies(granted, deny.action) for granted in GRANTS[allow.action])


def _covers(outer: str, inner: str) -> bool:
    """A conservative test that every path matching `inner` also matches `outer`."""
    if outer == inner or outer == "**":
        return True
    if outer.endswith("/**"):
        base = outer[: -len("/**")]
        if not any(wildcard in base for wildcard in WILDCARDS):
            return inner == base or inner.startswith(base + "/")
    return False
