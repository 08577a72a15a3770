"""Which limits apply to whom, and which counter they are charged to.

Defaults per action, overridden per principal. Precedence, for each action on its own
(an override may name only the actions it changes):

1. an override for the caller's verified agent (`agent:<id>`, from a JWT's agent claim,
   never the self-declared MCP client name) or for a hub service (`service:<name>`):
   that principal gets its own counter, `<realm>:<user>:agent:<id>` (or the service's
   `<realm>:service:<name>`), with the override's budget, larger or smaller than its user's;
2. the user's own override;
3. the most generous override among the user's groups;
4. the default.

Steps 2 to 4 charge the user's counter (`<realm>:<user>`), which every agent without an
override of its own shares with the person it acts for.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, NamedTuple

from limits import RateLimitItem, parse_many

from ..identity.principal import SERVICE_PREFIX
from ..registry import ACTIONS

if TYPE_CHECKING:
    from ..identity.principal import Principal

DEFAULT_RATE_LIMITS = {"read": "600/minute", "write": "120/minute", "execute": "30/minute", "admin": "30/minute"}
GROUP_PREFIX = "group:"
AGENT_PREFIX = "agent:"
_KINDS = (GROUP_PREFIX, AGENT_PREFIX, SERVICE_PREFIX)

Budget = tuple[RateLimitItem, ...]


class Allowance(NamedTuple):
    budget: Budget
    # The counter the call is charged to (without the namespace and action class).
    key: str


def parse_budget(text: str) -> Budget:
    """'120/minute', or several limits at once: '10/second;120/minute'."""
    if not isinstance(text, str):
        raise ValueError(f"a rate limit is a string like '120/minute', not {text!r}")
    try:
        return tuple(parse_many(text))
    except ValueError:
        raise ValueError(f"{text!r} is not a rate limit: use e.g. '120/minute' or '10/second;120/minute'") from None


def parse_action_budgets(limits: Mapping[str, str], where: str) -> dict[str, Budget]:
    unknown = sorted(set(limits) - set(ACTIONS))
    if unknown:
        raise ValueError(f"{where}: unknown action(s) {', '.join(unknown)}; actions are {', '.join(ACTIONS)}")
    return {action: parse_budget(text) for action, text in limits.items()}


def generosity(budget: Budget) -> float:
    """Sustained calls per second a budget allows: its tightest limit decides."""
    return min(item.amount / item.get_expiry() for item in budget)


def _check_subject(subject: str) -> None:
    kind, colon, name = subject.partition(":")
    if not colon:
        if not subject:
            raise ValueError("rate_limit_overrides: an empty name matches nobody")
        return
    if f"{kind}:" not in _KINDS or not name or ":" in name:
        # An override that can never match would silently leave the default in force.
        raise ValueError(f"rate_limit_overrides[{subject!r}]: name a user, group:<name>, agent:<id> or service:<name>")


class Budgets:
    def __init__(self, defaults: Mapping[str, str], overrides: Mapping[str, Mapping[str, str]]) -> None:
        self.defaults = parse_action_budgets({**DEFAULT_RATE_LIMITS, **defaults}, "rate_limits")
        # Users and hub services by their principal's user name (a service's is `service:<name>`, and no
        # user's contains ':'); groups and agents by their bare name.
        self.principals: dict[str, dict[str, Budget]] = {}
        self.groups: dict[str, dict[str, Budget]] = {}
        self.agents: dict[str, dict[str, Budget]] = {}
        for subject, limits in overrides.items():
            _check_subject(subject)
            if not isinstance(limits, Mapping):
                raise ValueError(f"rate_limit_overrides[{subject!r}] must map actions to limits, not {limits!r}")
            budgets = parse_action_budgets(limits, f"rate_limit_overrides[{subject!r}]")
            if subject.startswith(GROUP_PREFIX):
                self.groups[subject.removeprefix(GROUP_PREFIX)] = budgets
            elif subject.startswith(AGENT_PREFIX):
                self.agents[subject.removeprefix(AGENT_PREFIX)] = budgets
            else:
                self.principals[subject] = budgets

    def resolve(self, principal: Principal, action: str) -> Allowance:
        # `agent` is only ever set from verified credentials; the declared client name is not consulted.
        if principal.agent:
            own = self.agents.get(principal.agent, {}).get(action)
            if own is not None:
                return Allowance(own, f"{principal.rate_key}:{AGENT_PREFIX}{principal.agent}")
        own = self.principals.get(principal.user, {}).get(action)
        if own is not None:
            return Allowance(own, principal.rate_key)
        from_groups = [self.groups[g][action] for g in principal.groups if action in self.groups.get(g, {})]
        if from_groups:
            return Allowance(max(from_groups, key=generosity), principal.rate_key)
        return Allowance(self.defaults[action], principal.rate_key)
