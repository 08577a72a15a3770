"""Rate limits: budget resolution, memory and a real Redis, storage outages, auth-failure limits, size limits."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
from audit_fixtures import ALICE, make_call
from harness import free_port
from traitlets import TraitError

from jupyter_collab_mcp_secure.gateway.chain import Chain
from jupyter_collab_mcp_secure.gateway.context import CallContext
from jupyter_collab_mcp_secure.gateway.errors import (
    INVALID_ARGUMENT,
    RATE_LIMITED,
    UNAVAILABLE,
    ToolFailure,
    error_code_of,
    ok_result,
)
from jupyter_collab_mcp_secure.gateway.stages.ratelimit import RateLimitStage
from jupyter_collab_mcp_secure.gateway.stages.size import ArgumentSizeStage
from jupyter_collab_mcp_secure.identity.authenticate import Authenticator
from jupyter_collab_mcp_secure.identity.principal import Principal
from jupyter_collab_mcp_secure.ratelimit.budgets import Budgets, parse_budget
from jupyter_collab_mcp_secure.ratelimit.config import RateLimitConfig
from jupyter_collab_mcp_secure.registry import BY_NAME

LOG = logging.getLogger("test-ratelimit")
BOB = Principal(user="bob", auth="jupyter", realm="jupyter", groups=("staff", "ci"))
CAROL = Principal(user="carol", auth="jupyter", realm="jupyter", groups=("staff",))
EVE = Principal(user="eve", auth="jupyter", realm="jupyter")


def limiter(**traits):
    return RateLimitConfig(**traits).make_rate_limiter(LOG)


async def spend(limiter, principal, action, times, cost=1):
    """How many of `times` calls pass before the first refusal; the refusal itself."""
    for passed in range(times):
        try:
            await limiter.hit(principal, action, cost)
        except ToolFailure as failure:
            return passed, failure
    return times, None


# -- budgets -------------------------------------------------------------------------------


def test_defaults_suit_an_agent():
    config = RateLimitConfig()
    assert config.rate_limits == {
        "read": "600/minute",
        "write": "120/minute",
        "execute": "30/minute",
        "admin": "30/minute",
    }
    assert config.rate_limit_storage == "memory://"


def test_user_override_wins_else_most_generous_group_else_default():
    budgets = Budgets(
        {"write": "10/minute"},
        {
            "bob": {"execute": "5/minute"},
            "group:staff": {"execute": "50/minute", "write": "20/minute"},
            "group:ci": {"execute": "2/second", "write": "1/second;10/minute"},
        },
    )

    def limit(principal, action):
        return ";".join(str(item) for item in budgets.resolve(principal, action).budget)

    assert limit(BOB, "execute") == "5 per 1 minute"  # the user's own override
    assert limit(CAROL, "execute") == "50 per 1 minute"  # the group's
    assert limit(BOB, "write") == "20 per 1 minute"  # staff's 20/minute outlasts ci's 1/second;10/minute
    assert limit(EVE, "write") == "10 per 1 minute"  # configured default
    assert limit(EVE, "read") == "600 per 1 minute"  # built-in default for actions left out
    assert limit(BOB, "read") == "600 per 1 minute"  # overrides apply per action


def test_most_generous_group_is_judged_by_sustained_rate():
    budgets = Budgets({}, {"group:staff": {"execute": "100/hour"}, "group:ci": {"execute": "5/minute"}})
    assert [str(i) for i in budgets.resolve(BOB, "execute").budget] == ["5 per 1 minute"]


BOT_FOR_BOB = Principal(user="bob", auth="jwt", realm="https://issuer.example", groups=("ci",), agent="bot")
# A hub service as the identity stage makes it from the hub's model (kind "service").
NIGHTLY = Authenticator(owner="alice", jwt_verifier=None).principal_for_jupyter_user(
    SimpleNamespace(username="nightly", display_name="nightly", hub_user={"name": "nightly", "kind": "service"})
)


def test_agent_and_service_overrides_come_first_on_counters_of_their_own():
    budgets = Budgets(
        {},
        {
            "agent:bot": {"execute": "2/minute", "read": "5000/minute"},
            "bob": {"execute": "5/minute", "write": "7/minute"},
            "group:ci": {"execute": "50/minute", "write": "70/minute", "admin": "9/minute"},
            "service:nightly": {"execute": "300/hour"},
        },
    )
    own = "https://issuer.example:bob:agent:bot"
    # Smaller and larger than the user's own, each on the agent's counter.
    assert budgets.resolve(BOT_FOR_BOB, "execute") == (parse_budget("2/minute"), own)
    assert budgets.resolve(BOT_FOR_BOB, "read") == (parse_budget("5000/minute"), own)
    # Actions the agent's override leaves out: the user's own, then the group's, on the user's counter.
    assert budgets.resolve(BOT_FOR_BOB, "write") == (parse_budget("7/minute"), "https://issuer.example:bob")
    assert budgets.resolve(BOT_FOR_BOB, "admin") == (parse_budget("9/minute"), "https://issuer.example:bob")
    # The same person without the agent, and another agent of theirs: the user's budget and counter.
    assert budgets.resolve(BOB, "execute") == (parse_budget("5/minute"), "jupyter:bob")
    other = Principal(user="bob", auth="jwt", realm="https://issuer.example", agent="helper")
    assert budgets.resolve(other, "execute") == (parse_budget("5/minute"), "https://issuer.example:bob")
    # A hub service is a principal of its own: its override, its counter; never the user of the same name.
    assert budgets.resolve(NIGHTLY, "execute") == (parse_budget("300/hour"), "jupyter:service:nightly")
    assert budgets.resolve(NIGHTLY, "read") == (parse_budget("600/minute"), "jupyter:service:nightly")
    namesake = Principal(user="nightly", auth="jupyter", realm="jupyter")
    assert budgets.resolve(namesake, "execute") == (parse_budget("30/minute"), "jupyter:nightly")


def test_a_self_declared_client_name_gets_no_agent_override():
    budgets = Budgets({}, {"agent:bot": {"execute": "1000/minute"}})
    posing = Principal(user="bob", auth="jupyter", realm="jupyter", declared_client="bot")
    assert budgets.resolve(posing, "execute") == (parse_budget("30/minute"), "jupyter:bob")


async def test_an_agent_with_an_override_spends_its_own_counter_not_its_users():
    memory = limiter(
        rate_limits={"execute": "3/minute"},
        rate_limit_overrides={"agent:bot": {"execute": "5/minute"}, "agent:slow": {"execute": "1/minute"}},
    )
    user = Principal(user="bob", auth="jwt", realm="https://issuer.example")
    slow = Principal(user="bob", auth="jwt", realm="https://issuer.example", agent="slow")
    passed, failure = await spend(memory, BOT_FOR_BOB, "execute", 10)
    assert passed == 5 and "of agent bot (its own budget)" in failure.message
    assert (await spend(memory, slow, "execute", 3))[0] == 1
    assert (await spend(memory, user, "execute", 10))[0] == 3  # untouched by its agents' calls
    await memory.close()


@pytest.mark.parametrize(
    ("traits", "message"),
    [
        ({"rate_limits": {"write": "lots"}}, "not a rate limit"),
        ({"rate_limits": {"delete": "1/minute"}}, "unknown action"),
        ({"rate_limit_overrides": {"group:x": {"read": "1/fortnight"}}}, "not a rate limit"),
        ({"rate_limit_overrides": {"bob": "10/minute"}}, "must map actions"),
        ({"rate_limit_overrides": {"role:owner": {"read": "1/minute"}}}, "name a user, group:<name>, agent:<id>"),
        ({"rate_limit_overrides": {"agent:": {"read": "1/minute"}}}, "name a user"),
        ({"auth_failure_limit": "many"}, "auth_failure_limit"),
        ({"max_edit_chars": 0}, "must be positive"),
    ],
)
def test_bad_configuration_is_a_clear_trait_error(traits, message):
    with pytest.raises(TraitError, match=message):
        RateLimitConfig(**traits)


# -- counting (memory) -------------------------------------------------------------------


async def test_over_the_limit_is_rate_limited_with_retry_after():
    memory = limiter(rate_limits={"write": "3/minute"})
    passed, failure = await spend(memory, ALICE, "write", 10)
    assert passed == 3
    assert failure.code == RATE_LIMITED and isinstance(failure.details["retry_after"], int)
    assert 1 <= failure.details["retry_after"] <= 60
    assert (await spend(memory, EVE, "write", 3))[0] == 3  # another principal has its own budget
    assert (await spend(memory, ALICE, "read", 3))[0] == 3  # another action class too
    await memory.close()


async def test_cost_is_charged_and_overrides_apply():
    memory = limiter(rate_limits={"execute": "4/minute"}, rate_limit_overrides={"group:ci": {"execute": "10/minute"}})
    assert (await spend(memory, EVE, "execute", 5, cost=2))[0] == 2
    assert (await spend(memory, BOB, "execute", 20))[0] == 10
    await memory.close()


async def test_sliding_window_counter_strategy_limits_too():
    memory = limiter(rate_limits={"admin": "2/minute"}, rate_limit_strategy="sliding-window-counter")
    passed, failure = await spend(memory, ALICE, "admin", 5)
    assert passed == 2 and failure.details["retry_after"] >= 1
    await memory.close()


async def test_stage_refuses_before_the_tool_runs():
    memory = limiter(rate_limits={"write": "1/minute"})
    ran = []

    async def tool(call):
        ran.append(call.tool)
        return ok_result({})

    chain = Chain([RateLimitStage(memory)], endpoint=tool)
    assert not (await chain(make_call())).is_error
    refused = await chain(make_call())
    assert error_code_of(refused) == RATE_LIMITED
    assert refused.structured_content["error"]["retry_after"] >= 1
    assert ran == ["update_notebook_cell"]
    await memory.close()


def test_refusal_budget_per_principal_and_per_address():
    budget = RateLimitConfig(refusal_record_limit="3/minute", auth_failure_limit="2/minute").make_refusal_budget()
    assert [budget.admit("jupyter:mallory") for _ in range(5)] == [True, True, True, False, False]
    assert budget.admit("jupyter:alice")
    assert [budget.admit("@198.51.100.7") for _ in range(3)] == [True, True, False]
    assert budget.admit("@198.51.100.8")


def test_refusal_budget_refills_at_its_sustained_rate(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr("jupyter_collab_mcp_secure.ratelimit.refusals.time.monotonic", lambda: now[0])
    budget = RateLimitConfig(refusal_record_limit="2/minute").make_refusal_budget()
    assert [budget.admit("jupyter:mallory") for _ in range(3)] == [True, True, False]
    now[0] += 30  # one call's worth at 2/minute
    assert [budget.admit("jupyter:mallory") for _ in range(2)] == [True, False]


# -- a real Redis --------------------------------------------------------------------------


async def test_two_limiters_on_one_redis_share_one_budget(redis):  # noqa: F811
    first = limiter(rate_limits={"write": "5/minute"}, rate_limit_storage=redis.uri)
    second = limiter(rate_limits={"write": "5/minute"}, rate_limit_storage=redis.uri)
    assert first.storage_uri.startswith("async+redis://")
    assert (await spend(first, ALICE, "write", 3))[0] == 3
    passed, failure = await spend(second, ALICE, "write", 3)
    assert passed == 2 and failure.code == RATE_LIMITED
    assert (await spend(first, ALICE, "write", 1))[0] == 0
    assert redis.command("KEYS", "*").count(b"https://issuer.example:alice") == 1
    await first.close()
    await second.close()


async def test_unreachable_storage_fails_closed_by_default(caplog):
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    closed = limiter(rate_limit_storage=nowhere, rate_limit_storage_timeout=0.5)
    with caplog.at_level(logging.ERROR, logger="test-ratelimit"):
        for _ in range(3):
            with pytest.raises(ToolFailure) as refused:
                await closed.hit(ALICE, "read", 1)
            assert refused.value.code == UNAVAILABLE
    assert sum("unreachable" in m and "refusing calls" in m for m in caplog.messages) == 1
    await closed.close()


async def test_unreachable_storage_fails_open_when_configured(caplog):
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    open_ = limiter(rate_limit_storage=nowhere, rate_limit_fail_open=True, rate_limit_storage_timeout=0.5)
    with caplog.at_level(logging.ERROR, logger="test-ratelimit"):
        assert await open_.hit(ALICE, "read", 1) is False
    assert any("letting calls through" in m for m in caplog.messages)
    # The stage puts the skipped limit into the call's audit record.
    call = CallContext(principal=ALICE, tool="get_notebook", arguments={}, request_id="r", spec=BY_NAME["get_notebook"])

    async def endpoint(call: CallContext) -> str:
        return "ran"

    assert await RateLimitStage(open_)(call, endpoint) == "ran"
    assert call.audit_notes == {"rate_limit_fail_open": True}
    await open_.close()


async def test_redis_outage_and_recovery(tmp_path):
    from ratelimit_fixtures import start_redis

    server = start_redis(tmp_path / "redis")
    shared = limiter(rate_limit_storage=server.uri, rate_limit_storage_timeout=0.5)
    await shared.hit(ALICE, "read", 1)
    server.stop()
    with pytest.raises(ToolFailure) as refused:
        await shared.hit(ALICE, "read", 1)
    assert refused.value.code == UNAVAILABLE
    await shared.close()


# -- argument size -------------------------------------------------------------------------


async def test_oversized_arguments_and_edits_are_invalid_and_change_nothing():
    ran = []

    async def tool(call):
        ran.append(call.tool)
        return ok_result({})

    chain = Chain([ArgumentSizeStage(max_argument_bytes=1000, max_edit_chars=100)], endpoint=tool)
    big = await chain(make_call(arguments={"path": "a.ipynb", "cell_id": "c", "content": "é" * 600}))
    assert error_code_of(big) == INVALID_ARGUMENT and big.structured_content["error"]["limit"] == 1000
    long_edit = await chain(make_call("insert_text", arguments={"path": "a.txt", "text": "x" * 101, "position": 0}))
    assert error_code_of(long_edit) == INVALID_ARGUMENT
    assert long_edit.structured_content["error"]["argument"] == "text"
    assert ran == []
    assert not (
        await chain(make_call("insert_text", arguments={"path": "a.txt", "text": "x" * 100, "position": 0}))
    ).is_error
    # only write tools carry edits: a long read argument is bounded by the total size alone
    assert not (await chain(make_call("get_document", arguments={"path": "p" * 200}))).is_error
    assert ran == ["insert_text", "get_document"]
