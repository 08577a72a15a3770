"""The audit stage: one record per call with its final outcome; refusal while the trail cannot write."""

from __future__ import annotations

import asyncio
import logging

import pytest
from audit_fixtures import FlakyDisk, make_call, make_trail, records

from jupyter_collab_mcp_secure.gateway.chain import Chain
from jupyter_collab_mcp_secure.gateway.errors import (
    FORBIDDEN,
    NOT_FOUND,
    RATE_LIMITED,
    UNAVAILABLE,
    ToolFailure,
    error_code_of,
    ok_result,
)
from jupyter_collab_mcp_secure.gateway.stages.audit import AuditStage


class Endpoint:
    """The rest of the chain: authorizes the call (as the authorize stage would) and then acts."""

    def __init__(self, behaviour=None):
        self.behaviour = behaviour or (lambda call: ok_result({"done": True}))
        self.calls = 0

    async def __call__(self, call):
        self.calls += 1
        call.action, call.paths = "write", ("notebooks/demo.ipynb",)
        result = self.behaviour(call)
        if asyncio.iscoroutine(result):
            result = await result
        return result


def allow_then(outcome):
    def behaviour(call):
        call.decision = "allow"
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    return behaviour


def deny(call):
    raise ToolFailure(FORBIDDEN, "write on notebooks/demo.ipynb denied")


@pytest.fixture
async def trail(tmp_path):
    trail = make_trail(tmp_path)
    await trail.start()
    yield trail
    await trail.close()


async def run(trail, endpoint, call=None):
    chain = Chain([AuditStage(trail)], endpoint=_refusing(endpoint))
    return await chain(call or make_call())


def _refusing(endpoint):
    # Inner stages refuse by raising ToolFailure; the chain turns that into a result below audit.
    async def inner(call):
        try:
            return await endpoint(call)
        except ToolFailure as failure:
            return failure.to_result()

    return inner


async def logged(trail):
    await trail.close()
    return [r for r in records(trail.sink.path) if r["event"] == "tool_call"]


async def test_allowed_call_is_recorded_with_the_contract_fields(trail):
    result = await run(trail, Endpoint(allow_then(ok_result({"ok": 1}))))
    assert not result.is_error
    (record,) = await logged(trail)
    assert record == {
        **record,
        "event": "tool_call",
        "user": "alice",
        "auth": "jwt",
        "groups": ["staff"],
        "agent": "claude-code",
        "declared_client": "Claude Desktop",
        "tool": "update_notebook_cell",
        "action": "write",
        "paths": ["notebooks/demo.ipynb"],
        "decision": "allow",
        "outcome": "ok",
        "error_code": None,
        "request_id": "req-1",
    }
    assert record["duration_ms"] >= 0 and record["ts"].endswith("Z")
    assert record["args_digest"] == trail.digest(make_call().arguments)
    assert "secret = 42" not in trail.sink.path.read_text()


@pytest.mark.parametrize(
    ("behaviour", "outcome", "code", "decision"),
    [
        (deny, "denied", FORBIDDEN, "deny"),
        (
            allow_then(ToolFailure(RATE_LIMITED, "slow down", retry_after=7).to_result()),
            "rate_limited",
            RATE_LIMITED,
            "allow",
        ),
        (allow_then(ToolFailure(NOT_FOUND, "no such cell").to_result()), "error", NOT_FOUND, "allow"),
    ],
)
async def test_refused_and_failed_calls_are_recorded_with_their_outcome(trail, behaviour, outcome, code, decision):
    result = await run(trail, Endpoint(behaviour))
    assert error_code_of(result) == code
    (record,) = await logged(trail)
    assert (record["outcome"], record["error_code"], record["decision"]) == (outcome, code, decision)


async def test_client_disconnect_is_recorded_and_the_cancellation_propagates(trail):
    started = asyncio.Event()

    async def slow(call):
        started.set()
        await asyncio.sleep(60)

    task = asyncio.create_task(run(trail, Endpoint(slow)))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (record,) = await logged(trail)
    assert record["outcome"] == "client_disconnected"


async def test_unexpected_exception_is_recorded_and_raised(trail):
    with pytest.raises(RuntimeError):
        await run(trail, Endpoint(allow_then(RuntimeError("bug"))))
    (record,) = await logged(trail)
    assert (record["outcome"], record["error_code"]) == ("error", "internal:RuntimeError")


async def test_calls_are_refused_before_the_tool_while_the_sink_cannot_write(tmp_path):
    disk = FlakyDisk(tmp_path / "audit.jsonl")
    disk.full = True
    trail = make_trail(tmp_path, sink=disk)
    await trail.start()
    endpoint = Endpoint(allow_then(ok_result({})))
    result = await run(trail, endpoint)
    assert error_code_of(result) == UNAVAILABLE and endpoint.calls == 0
    disk.full = False
    for _ in range(500):
        if trail.healthy:
            break
        await asyncio.sleep(0.01)
    result = await run(trail, endpoint)
    assert not result.is_error and endpoint.calls == 1
    outcomes = [(r["outcome"], r["error_code"]) for r in await logged(trail)]
    assert outcomes == [("error", UNAVAILABLE), ("ok", None)]  # the refusal itself was audited


async def test_fail_open_lets_calls_through_and_says_so(tmp_path, caplog):
    disk = FlakyDisk(tmp_path / "audit.jsonl")
    disk.full = True
    trail = make_trail(tmp_path, sink=disk, fail_open=True)
    await trail.start()
    endpoint = Endpoint(allow_then(ok_result({})))
    with caplog.at_level(logging.WARNING, logger="test-audit"):
        for _ in range(3):
            assert not (await run(trail, endpoint)).is_error
    assert endpoint.calls == 3
    assert sum("audit_fail_open lets tool calls through" in m for m in caplog.messages) == 1
    disk.full = False
    for _ in range(500):
        if trail.healthy:
            break
        await asyncio.sleep(0.01)
    calls = await logged(trail)
    assert len(calls) == 3 and all(r["fail_open"] is True for r in calls)


async def test_calls_are_refused_before_the_trail_starts(tmp_path):
    trail = make_trail(tmp_path)
    endpoint = Endpoint()
    result = await run(trail, endpoint)
    assert error_code_of(result) == UNAVAILABLE and endpoint.calls == 0
