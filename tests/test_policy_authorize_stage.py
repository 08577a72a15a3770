"""The authorize stage in the chain: every path checked, listings filtered, denials `forbidden`."""

from __future__ import annotations

import pytest
from policy_fixtures import MODEL, principal

from jupyter_collab_mcp_secure.gateway.chain import Chain
from jupyter_collab_mcp_secure.gateway.context import CallContext
from jupyter_collab_mcp_secure.gateway.errors import error_code_of, ok_result
from jupyter_collab_mcp_secure.gateway.stages.authorize import AuthorizeStage
from jupyter_collab_mcp_secure.policy.engine import PolicyEngine
from jupyter_collab_mcp_secure.registry import BY_NAME


@pytest.fixture
def engine(tmp_path):
    policy = tmp_path / "p.csv"
    policy.write_text(
        "p, alice, mine/**, write, allow\np, alice, shared/**, read, allow\np, agent:bot, mine/secret/**, read, deny\n"
    )
    return PolicyEngine(MODEL, policy)


def make_call(tool, paths, who):
    spec = BY_NAME[tool]
    call = CallContext(principal=who, tool=tool, arguments={}, request_id="r1")
    call.spec, call.action, call.paths = spec, spec.action, tuple(paths)
    return call


async def run(engine, call):
    reached = []

    async def tool(call):
        reached.append(call)
        return ok_result({"visible": call.readable(["mine/a", "shared/b", "mine/secret/c", "other/d"])})

    return await Chain([AuthorizeStage(engine)], tool)(call), reached


async def test_allowed_call_reaches_the_tool(engine):
    call = make_call("update_notebook_cell", ["mine/a.ipynb"], principal("alice"))
    result, reached = await run(engine, call)
    assert error_code_of(result) is None and reached and call.decision == "allow"


async def test_every_path_is_checked(engine):
    call = make_call("update_notebook_cell", ["mine/a.ipynb", "shared/b.ipynb"], principal("alice"))
    result, reached = await run(engine, call)
    assert error_code_of(result) == "forbidden" and not reached and call.decision == "deny"
    assert result.structured_content["error"]["message"] == "write on 'shared/b.ipynb' is not allowed"


async def test_the_agent_deny_applies_to_the_agent_only(engine):
    bot = make_call("get_notebook", ["mine/secret/x.ipynb"], principal("alice", agent="bot"))
    result, _ = await run(engine, bot)
    assert result.structured_content["error"] == {
        "code": "forbidden",
        "message": "read on 'mine/secret/x.ipynb' is not allowed",
    }
    alice = make_call("get_notebook", ["mine/secret/x.ipynb"], principal("alice"))
    result, _ = await run(engine, alice)
    assert error_code_of(result) is None


async def test_listings_are_filtered_not_refused(engine):
    call = make_call("list_notebooks", ["elsewhere"], principal("alice", agent="bot"))
    result, reached = await run(engine, call)
    assert reached and result.structured_content == {"visible": ["mine/a", "shared/b"]}


async def test_self_only_tools_need_authentication_only(engine):
    call = make_call("set_user_presence", [], principal("nobody"))
    result, reached = await run(engine, call)
    assert reached and error_code_of(result) is None and call.decision == "allow"


async def test_denied_root_is_named(engine):
    call = make_call("execute_notebook_cell", [""], principal("alice"))
    result, _ = await run(engine, call)
    assert result.structured_content["error"]["message"] == "execute on '/' is not allowed"


async def test_a_document_tool_without_any_path_is_refused(engine):
    call = make_call("get_notebook", [], principal("alice"))
    result, reached = await run(engine, call)
    assert error_code_of(result) == "invalid_argument" and not reached and call.decision == "deny"
    documentless = AuthorizeStage(engine, frozenset({"broadcast_user_activity"}))
    call = make_call("broadcast_user_activity", [], principal("nobody"))
    assert error_code_of(await Chain([documentless], _ok)(call)) is None


async def test_an_overlong_path_is_invalid_before_any_matching(engine):
    call = make_call("get_notebook", ["mine/" + "x" * 256], principal("alice"))
    result, reached = await run(engine, call)
    assert error_code_of(result) == "invalid_argument" and not reached
    assert "255 bytes" in result.structured_content["error"]["message"]


async def _ok(call):
    return ok_result({})
