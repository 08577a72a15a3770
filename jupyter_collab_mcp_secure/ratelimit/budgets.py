"""Which limits apply to whom: defaults per action, overridden per user or per group.

A user's own override wins; else the most generous override among the user's
groups; else the default. Each action is resolved on its own, so an override may
name only the actions it changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from limits import RateLimitItem, parse_many

from ..registry import ACTIONS

if TYPE_CHECKING:
    from ..identity.principal import Principal

DEFAULT_RATE_LIMITS = {"read": "600/minute", "write": "120/minute", "execute": "30/minute", "admin": "30/minute"}
GROUP_PREFIX = "group:"

Budget = tuple[RateLimitItem, ...]


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


class Budgets:
    def __init__(self, defaults: Mapping[str, str], overrides: Mapping[str, Mapping[str, str]]) -> None:
        self.defaults = parse_action_budgets({**DEFAULT_RATE_LIMITS, **defaults}, "rate_limits")
        self.users: dict[str, dict[str, Budget]] = {}
        self.groups: dict[str, dict[str, Budget]] = {}
        for subject, limits in overrides.items():
            if not isinstance(limits, Mapping):
                raise ValueError(f"rate_limit_overrides[{subject!r}] must map actions to limits, not {limits!r}")
            budgets = parse_action_budgets(limits, f"rate_limit_overrides[{subject!r}]")
            if subject.startswith(GROUP_PREFIX):
                self.groups[subject.removeprefix(GROUP_PREFIX)] = budgets
            else:
                self.users[subject] = budgets

    def for_principal(self, principal: Principal, action: str) -> Budget:
        own = self.users.get(principal.user, {}).get(action)
        if own is not None:
            return own
        from_groups = [self.groups[g][action] for g in principal.groups if action in self.groups.get(g, {})]
        if from_groups:
            return max(from_groups, key=generosity)
        return self.defaults[action]
