"""Why a principal may or may not do something: the decision and every rule behind it.

Casbin's `enforce_ex` names one rule; admins need all of them, and the `g` links
that made a rule apply, so the bundled model is evaluated here rule by rule.
"""

from __future__ import annotations

from dataclasses import dataclass

from .engine import make_decider
from .functions import ALLOW, implies
from .glob import path_match
from .index import MAX_ROLE_HOPS
from .source import NO_RULE, PolicySnapshot, RoleLink, Rule


@dataclass(frozen=True)
class Contribution:
    rule: Rule
    # The principal's subject and the `g` links leading from it to the rule's subject.
    chain: tuple[RoleLink, ...]
    holder: str


@dataclass(frozen=True)
class Explanation:
    allowed: bool
    subjects: tuple[str, ...]
    action: str
    path: str
    allows: tuple[Contribution, ...]
    denies: tuple[Contribution, ...]
    standard_model: bool

    @property
    def reason(self) -> str:
        if self.denies:
            return "an explicit deny matches (a deny always wins)"
        if self.allows:
            return "an allow rule matches and no deny does"
        return NO_RULE


def role_chains(snapshot: PolicySnapshot, subject: str) -> dict[str, tuple[RoleLink, ...]]:
    """Every name `subject` holds, with the shortest `g` chain that gives it (as Casbin counts hops)."""
    by_member: dict[str, list[RoleLink]] = {}
    for link in snapshot.links:
        by_member.setdefault(link.member, []).append(link)
    chains: dict[str, tuple[RoleLink, ...]] = {subject: ()}
    frontier = [subject]
    for _ in range(MAX_ROLE_HOPS):
        next_frontier = []
        for name in frontier:
            for link in by_member.get(name, ()):
                if link.role not in chains:
                    chains[link.role] = chains[name] + (link,)
                    next_frontier.append(link.role)
        frontier = next_frontier
    return chains


def explain(snapshot: PolicySnapshot, subjects: tuple[str, ...], action: str, path: str) -> Explanation:
    held: dict[str, tuple[str, tuple[RoleLink, ...]]] = {}
    for subject in subjects:
        for name, chain in role_chains(snapshot, subject).items():
            if name not in held or len(chain) < len(held[name][1]):
                held[name] = (subject, chain)
    allows, denies = [], []
    for rule in snapshot.rules:
        if rule.subject not in held or not path_match(path, rule.pattern):
            continue
        holder, chain = held[rule.subject]
        if rule.effect == ALLOW and implies(rule.action, action):
            allows.append(Contribution(rule, chain, holder))
        elif rule.effect != ALLOW and implies(action, rule.action):
            denies.append(Contribution(rule, chain, holder))
    decision = make_decider(snapshot, cache_size=0).allowed(subjects, action, path)
    return Explanation(
        decision,
        subjects,
        action,
        path,
        tuple(allows),
        tuple(denies),
        snapshot.standard_model,
    )


def render(explanation: Explanation) -> str:
    verdict = "ALLOW" if explanation.allowed else "DENY"
    shown_path = explanation.path or "(the server root)"
    lines = [
        f"{verdict}: {explanation.action} on {shown_path}",
        f"  subjects: {', '.join(explanation.subjects)}",
        f"  because {explanation.reason}",
    ]
    for title, contributions in (
        ("deny rules", explanation.denies),
        ("allow rules", explanation.allows),
    ):
        if not contributions:
            continue
        lines.append(f"  {title}:")
        for contribution in contributions:
            rule = contribution.rule
            lines.append(f"    line {rule.line}: {rule}")
            via = " -> ".join(
                [contribution.holder] + [f"{link.role} (line {link.line})" for link in contribution.chain]
            )
            lines.append(f"      applies through {via}")
            if rule.action != explanation.action:
                relation = "grants" if rule.effect == ALLOW else "is implied by"
                lines.append(f"      {rule.action} {relation} {explanation.action}")
    if not explanation.standard_model:
        lines.append("  note: custom model; the decision is Casbin's, the rules listed follow the bundled model")
    return "\n".join(lines)
