"""See a policy change before it lands: replay recorded decisions against a candidate policy.

What is replayed: `tool_call` records whose decision the policy made up front, that
is the tool names a document action (not `set_user_presence`), is not a filtered
listing (those are decided per result, and their up-front `allow` means nothing
was refused), the record has paths, and either the policy allowed the call
(`decision: allow`, including calls later rate limited or failed in the tool) or
refused it (`outcome: denied`). Not replayed: calls refused before the policy ran
(invalid arguments or paths, the audit sink down: `decision: deny` with another
outcome), authentication failures, and refusals counted in `refusals_suppressed`
records rather than written one by one (reported as a count).

The caller's subjects come from the record's `subjects` field when present, else
are rebuilt as the server builds them: user, `agent:<id>`, `group:<name>` per
group, `role:<name>` per role, and `role:owner` for the owner's token or, where
records name their server as `<user>/<name>`, for that user.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..identity.principal import OWNER_ROLE, AuthMethod
from ..registry import BY_NAME
from .explain import Explanation, explain
from .functions import ALLOW, DENY
from .layers import BASELINE, OWNER, OwnerPolicy
from .layers_explain import explain_layers
from .source import NO_RULE, PolicySnapshot

# (subjects, action, path) -> (allowed, the rule that decided, as text)
Decide = Callable[[tuple[str, ...], str, str], tuple[bool, str]]
NOT_REPLAYED = {
    "no_policy_action": "the tool needs no document action (about the caller itself)",
    "filtered": "listings decided per result, not up front",
    "no_paths": "no document named",
    "before_policy": "refused before the policy ran (bad input, audit sink down)",
    "unknown": "unknown tool, action or caller",
}


@dataclass(frozen=True)
class Recorded:
    subjects: tuple[str, ...]
    action: str
    paths: tuple[str, ...]
    decision: str
    rule: str | None
    # The policy in force when the call was decided, as the trail's reload records tell.
    policy: str | None
    server: str


@dataclass
class Change:
    before: str
    after: str
    subjects: tuple[str, ...]
    action: str
    paths: tuple[str, ...]
    candidate_rule: str
    count: int = 0
    recorded_rules: Counter = field(default_factory=Counter)
    recorded_policies: Counter = field(default_factory=Counter)
    servers: Counter = field(default_factory=Counter)


@dataclass
class Simulation:
    replayed: int = 0
    not_replayed: Counter = field(default_factory=Counter)
    suppressed: int = 0
    changes: list[Change] = field(default_factory=list)

    @property
    def changed(self) -> int:
        return sum(change.count for change in self.changes)


def subjects_of(record: dict[str, Any]) -> tuple[str, ...] | None:
    given = record.get("subjects")
    if isinstance(given, list) and given and all(isinstance(s, str) and s for s in given):
        return tuple(given)
    user = record.get("user")
    if not isinstance(user, str) or not user:
        return None
    subjects = [user]
    if isinstance(record.get("agent"), str) and record["agent"]:
        subjects.append(f"agent:{record['agent']}")
    subjects.extend(f"group:{group}" for group in _strings(record.get("groups")))
    subjects.extend(role if role.startswith("role:") else f"role:{role}" for role in _strings(record.get("roles")))
    server_user = str(record.get("server") or "").partition("/")[0]
    is_owner = record.get("auth") == AuthMethod.OWNER_TOKEN or (server_user and server_user == user)
    if is_owner and OWNER_ROLE not in subjects:
        subjects.append(OWNER_ROLE)
    return tuple(subjects)


def _strings(value: Any) -> list[str]:
    return [item for item in value if isinstance(item, str) and item] if isinstance(value, list) else []


def replayable(record: dict[str, Any], policy: str | None = None) -> Recorded | str:
    """The recorded decision to replay, or the key in NOT_REPLAYED saying why not."""
    spec = BY_NAME.get(str(record.get("tool")))
    if spec is None:
        return "unknown"
    if spec.action is None:
        return "no_policy_action"
    if spec.filtered:
        return "filtered"
    if record.get("decision") == ALLOW:
        decision = ALLOW
    elif record.get("outcome") == "denied":
        decision = DENY
    else:
        return "before_policy"
    paths = record.get("paths")
    if not isinstance(paths, list) or not paths or not all(isinstance(p, str) for p in paths):
        return "no_paths"
    subjects = subjects_of(record)
    action = record.get("action")
    if subjects is None or not isinstance(action, str):
        return "unknown"
    rule = record.get("rule")
    return Recorded(
        subjects, action, tuple(paths), decision, str(rule) if rule else None, policy, str(record.get("server") or "")
    )


def decider(candidate: PolicySnapshot, owner: OwnerPolicy | None = None, capped_by: tuple[str, ...] = ()) -> Decide:
    """The candidate alone, or with an owner file layered on it as the server layers them."""

    def plain(subjects: tuple[str, ...], action: str, path: str) -> tuple[bool, str]:
        explanation = explain(candidate, subjects, action, path)
        return explanation.allowed, _deciding_rule(explanation)

    def layered(subjects: tuple[str, ...], action: str, path: str) -> tuple[bool, str]:
        both = explain_layers(candidate, owner, capped_by, subjects, action, path)
        if both.baseline.denies or both.layer == BASELINE:
            return both.allowed, "baseline " + _deciding_rule(both.baseline)
        if both.owner.denies or both.layer == OWNER:
            return both.allowed, "owner file " + _deciding_rule(both.owner)
        if both.owner.allows:
            capped = _deciding_rule(both.owner)
            return False, f"owner file {capped}, which the baseline does not allow the owner (capped)"
        return False, _deciding_rule(both.baseline)

    return plain if owner is None else layered


def simulate(records: Iterable[dict[str, Any]], decide: Decide) -> Simulation:
    result = Simulation()
    # Per server: the policy files in force (source -> sha256), from the reload records seen so far.
    in_force: dict[str, dict[str, str]] = {}
    decided: dict[tuple[tuple[str, ...], str, str], tuple[bool, str]] = {}
    changes: dict[tuple, Change] = {}
    for record in records:
        event = record.get("event")
        server = str(record.get("server") or "")
        if event == "policy_reload" and record.get("outcome") == "ok" and record.get("policy_sha256"):
            in_force.setdefault(server, {})[str(record.get("source"))] = str(record["policy_sha256"])
            continue
        if event == "refusals_suppressed" and isinstance(record.get("counts"), dict):
            result.suppressed += sum(
                count
                for reasons in record["counts"].values()
                if isinstance(reasons, dict)
                for count in reasons.values()
                if isinstance(count, int)
            )
            continue
        if event != "tool_call":
            continue
        policies = in_force.get(server)
        policy = ", ".join(f"{sha[:12]} ({source})" for source, sha in sorted(policies.items())) if policies else None
        recorded = replayable(record, policy)
        if isinstance(recorded, str):
            result.not_replayed[recorded] += 1
            continue
        result.replayed += 1
        decisions = []
        for path in recorded.paths:
            key = (recorded.subjects, recorded.action, path)
            if key not in decided:
                decided[key] = decide(*key)
            decisions.append(decided[key])
        # A call on several paths is allowed only if every path is; the first refusal decided it.
        refused = next((d for d in decisions if not d[0]), None)
        after = DENY if refused else ALLOW
        if after == recorded.decision:
            continue
        group = (recorded.decision, recorded.subjects, recorded.action, recorded.paths)
        change = changes.get(group)
        if change is None:
            rule = (refused or decisions[0])[1]
            change = changes[group] = Change(
                recorded.decision, after, recorded.subjects, recorded.action, recorded.paths, rule
            )
        change.count += 1
        change.recorded_rules[recorded.rule or "-"] += 1
        change.recorded_policies[recorded.policy or "-"] += 1
        change.servers[recorded.server or "-"] += 1
    result.changes = sorted(changes.values(), key=lambda c: (c.before, c.subjects, c.action, c.paths))
    return result


def _deciding_rule(explanation: Explanation) -> str:
    if explanation.denies:
        rule = explanation.denies[0].rule
    elif explanation.allows:
        rule = explanation.allows[0].rule
    else:
        return NO_RULE
    return f"line {rule.line}: {rule}"


def render(simulation: Simulation) -> str:
    lines = []
    for before, after in ((ALLOW, DENY), (DENY, ALLOW)):
        group = [change for change in simulation.changes if change.before == before]
        if not group:
            continue
        lines.append(f"WOULD CHANGE {before} -> {after}: {sum(c.count for c in group)} call(s)")
        for change in group:
            paths = ", ".join(path or "(the server root)" for path in change.paths)
            lines.append(f"  {', '.join(change.subjects)}: {change.action} on {paths}: {change.count} call(s)")
            lines.append(f"    recorded rule: {_counted(change.recorded_rules)}")
            lines.append(f"    recorded under policy: {_counted(change.recorded_policies)}")
            lines.append(f"    candidate: {after} by {change.candidate_rule}")
            if set(change.servers) != {"-"}:
                lines.append(f"    servers: {_counted(change.servers)}")
    skipped = sum(simulation.not_replayed.values())
    lines.append(
        f"{simulation.replayed} recorded decision(s) replayed, {simulation.changed} would change "
        f"({len(simulation.changes)} group(s)); {skipped} call(s) not replayed"
    )
    for reason, count in sorted(simulation.not_replayed.items()):
        lines.append(f"  not replayed: {count} {NOT_REPLAYED[reason]}")
    if simulation.suppressed:
        lines.append(f"  not replayed: {simulation.suppressed} refusal(s) counted in refusals_suppressed records")
    return "\n".join(lines)


def _counted(counter: Counter) -> str:
    if set(counter) == {"-"}:
        return "- (not in the records)"
    return "; ".join(f"{value} (x{count})" if len(counter) > 1 else value for value, count in counter.most_common())
