"""Rate-limit and size-limit settings, as traits that `CollabMCP` inherits."""

from __future__ import annotations

import logging

from traitlets import (
    Bool,
    Dict,
    Enum,
    Float,
    HasTraits,
    Int,
    TraitError,
    Unicode,
    validate,
)

from ..config_ranges import positive
from .budgets import DEFAULT_RATE_LIMITS, Budgets, parse_action_budgets, parse_budget
from .limiter import STRATEGIES, RateLimiter
from .refusals import RefusalBudget


class RateLimitConfig(HasTraits):
    rate_limits = Dict(
        dict(DEFAULT_RATE_LIMITS),
        config=True,
        help="""Calls each principal (user, across servers) may make per action class, as `limits`
        strings: {"read": "600/minute", "write": "120/minute", "execute": "30/minute",
        "admin": "30/minute"}. Several limits at once: "10/second;120/minute". Actions left
        out keep these defaults.""",
    )
    rate_limit_overrides = Dict(
        {},
        config=True,
        help="""Limits per user, group, agent or hub service: {"alice": {"execute": "120/minute"},
        "group:ci": {"read": "3000/minute"}, "agent:review-bot": {"write": "10/minute"},
        "service:nightly": {"execute": "300/hour"}}. Resolved per action: an override for the
        caller's verified agent id (a JWT agent claim, never the self-declared MCP client name)
        or hub service wins and is counted on its own counter (`<realm>:<user>:agent:<id>`: an
        agent's calls then no longer spend its user's budget, and its budget may be larger or
        smaller than the user's); else the user's own override, else the most generous of the
        user's groups, else rate_limits, all on the user's counter (`<realm>:<user>`).""",
    )
    rate_limit_storage = Unicode(
        "memory://",
        config=True,
        help="""Where counters live, as a `limits` storage URI: "memory://" (this process),
        or "redis://host:6379/0" (also "rediss://", "redis+sentinel://", "redis+cluster://")
        so that several servers share one budget; the asyncio client ("async+" is added when
        missing) needs the `coredis` package (extra: jupyter-collab-mcp-secure[redis]).""",
    )
    rate_limit_strategy = Enum(
        sorted(STRATEGIES),
        default_value="moving-window",
        config=True,
        help="""How calls are counted: "moving-window" (exact, one entry per call) or
        "sliding-window-counter" (approximate, two counters per key: cheaper in Redis).""",
    )
    rate_limit_fail_open = Bool(
        False,
        config=True,
        help="""When the counter storage is unreachable, let calls through (logged) instead of
        refusing them with `unavailable` (the default, fail-closed).""",
    )
    rate_limit_storage_timeout = Float(
        2.0,
        config=True,
        help="Seconds to wait for the counter storage (Redis connect and reply) before it counts as unreachable.",
    )
    auth_failure_limit = Unicode(
        "30/minute",
        config=True,
        help="""Authentication failures per remote address written to the audit log one by one;
        past it, further 401s from that address are counted in a periodic `refusals_suppressed`
        record instead, so a flood of bad tokens cannot flood the audit trail.""",
    )
    refusal_record_limit = Unicode(
        "30/minute",
        config=True,
        help="""Refused tool calls (denied, rate-limited, malformed) per principal written to the
        audit log one by one; past it, they are counted in a periodic `refusals_suppressed`
        record (per principal and reason) instead, so a principal without grants cannot flood
        the audit trail.""",
    )
    max_argument_bytes = Int(
        2 * 1024 * 1024,
        config=True,
        help="""Largest tool-call arguments accepted, in bytes of JSON; larger calls get
        `invalid_argument` and change nothing.""",
    )
    max_edit_chars = Int(
        1_000_000,
        config=True,
        help="""Most characters one edit may carry (the `content` or `text` argument of a write
        tool); more gets `invalid_argument` and changes nothing.""",
    )

    @validate("rate_limits")
    def _valid_rate_limits(self, proposal):
        try:
            parse_action_budgets(proposal["value"], "rate_limits")
        except ValueError as error:
            raise TraitError(str(error)) from None
        return proposal["value"]

    @validate("rate_limit_overrides")
    def _valid_overrides(self, proposal):
        try:
            Budgets({}, proposal["value"])
        except ValueError as error:
            raise TraitError(str(error)) from None
        return proposal["value"]

    @validate("auth_failure_limit", "refusal_record_limit")
    def _valid_record_limit(self, proposal):
        try:
            parse_budget(proposal["value"])
        except ValueError as error:
            raise TraitError(f"{proposal['trait'].name}: {error}") from None
        return proposal["value"]

    _ratelimit_positive = positive("max_argument_bytes", "max_edit_chars", "rate_limit_storage_timeout")

    def make_rate_limiter(self, log: logging.Logger) -> RateLimiter:
        return RateLimiter(
            Budgets(self.rate_limits, self.rate_limit_overrides),
            self.rate_limit_storage,
            log,
            strategy=self.rate_limit_strategy,
            fail_open=self.rate_limit_fail_open,
            storage_timeout=self.rate_limit_storage_timeout,
        )

    def make_refusal_budget(self) -> RefusalBudget:
        return RefusalBudget(self.refusal_record_limit, self.auth_failure_limit)
