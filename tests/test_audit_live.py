"""The audit trail of real servers: malformed calls, refusal floods, executions started and killed,
and several servers' chains in one stream."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import time
from pathlib import Path

import httpx
import jwt
import pytest
from harness import JupyterServer, audit_records, call, call_error, mcp_client, start_server, write_notebook

from jupyter_collab_mcp_secure.audit.verify import verify_files
from jupyter_collab_mcp_secure.cli import audit as audit_cli

AUDIENCE = "jupyter-mcp"
ISSUER = "https://issuer.example"
SECRET = b"0123456789abcdef0123456789abcdef"
LEGACY_VERSION = "2025-11-25"
WAITING_CELL = """\
import os, pathlib, time
pathlib.Path({started!r}).write_text(str(os.getpid()))
while not os.path.exists({release!r}):
    time.sleep(0.05)
print("released")
"""


def token_for(user: str) -> str:
    now = int(time.time())
    claims = {"sub": user, "aud": AUDIENCE, "iss": ISSUER, "exp": now + 300, "iat": now}
    return jwt.encode(claims, SECRET, algorithm="HS256")


def jwt_config(workdir: Path) -> dict:
    (workdir / "secret").write_bytes(SECRET)
    return {
        "jwt_secret_file": str(workdir / "secret"),
        "jwt_algorithms": ["HS256"],
        "jwt_audience": AUDIENCE,
        "jwt_issuer": ISSUER,
    }


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory):
    workdir = tmp_path_factory.mktemp("audit-live")
    root = workdir / "root"
    write_notebook(root / "cells.ipynb", ["x = 1"])
    running = start_server(
        workdir,
        config={
            "CollabMCP": {
                **jwt_config(workdir),
                "refusal_record_limit": "5/minute",
                "auth_failure_limit": "2/minute",
                "audit_suppressed_interval": 0.3,
            }
        },
    )
    yield running
    running.stop()


def cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    audit_cli.add_parser(parser.add_subparsers(dest="family", required=True))
    args = parser.parse_args(["audit", *argv])
    return args.run(args)


async def raw_session_call(server: JupyterServer, params: dict) -> dict:
    """A tools/call with exactly these params, in a handshake-era session opened by hand."""
    headers = {
        **server.headers(),
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
        "MCP-Protocol-Version": LEGACY_VERSION,
    }
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": LEGACY_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "raw", "version": "1"},
        },
    }
    async with httpx.AsyncClient(timeout=30) as http:
        opened = await http.post(server.mcp_url, json=initialize, headers=headers)
        headers["Mcp-Session-Id"] = opened.headers["mcp-session-id"]
        await http.post(server.mcp_url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers)
        answer = await http.post(
            server.mcp_url, json={"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": params}, headers=headers
        )
    data = [line[5:] for line in answer.text.splitlines() if line.startswith("data:")]
    return json.loads(data[-1] if data else answer.text)


@pytest.mark.parametrize("arguments", ["not an object", [1, 2], 0])
async def test_a_call_whose_arguments_are_not_an_object_leaves_exactly_one_record(audited, arguments):
    tool = f"get_notebook_{type(arguments).__name__}"
    reply = await raw_session_call(audited, {"name": tool, "arguments": arguments})
    assert reply["result"]["isError"] and reply["result"]["structuredContent"]["error"]["code"] == "invalid_argument"
    (record,) = await audit_records(audited, lambda r: r.get("tool") == tool, 1)
    assert record["event"] == "tool_call" and record["error_code"] == "invalid_argument"
    assert record["decision"] == "deny" and record["user"] == "owner"
    # The next call's record is written after this one's: no second record for the malformed call.
    async with mcp_client(audited) as client:
        await call(client, "list_notebooks")
    await audit_records(audited, lambda r: r.get("tool") == "list_notebooks", 1)
    assert len(await audit_records(audited, lambda r: r.get("tool") == tool, 1)) == 1


async def test_a_refusal_flood_costs_a_few_lines(audited):
    async with mcp_client(audited, token_for("mallory"), client_name="M" * 70_000) as client:
        for _ in range(40):
            assert (await call_error(client, "get_notebook", path="cells.ipynb"))["code"] == "forbidden"
    async with httpx.AsyncClient(timeout=30) as http:
        for _ in range(10):
            refused = await http.post(audited.mcp_url, headers={"Authorization": "Bearer not-a-token"}, json={})
            assert refused.status_code == 401
    key = f"{ISSUER}:mallory"

    def counted(record: dict) -> bool:
        return record.get("event") == "refusals_suppressed" and (
            key in record["counts"] or "@127.0.0.1" in record["counts"]
        )

    totals: dict[str, int] = {}
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not (totals.get(key) == 35 and totals.get("@127.0.0.1") == 8):
        await asyncio.sleep(0.1)
        totals = {}
        for record in await audit_records(audited, counted, 0):
            for who, reasons in record["counts"].items():
                totals[who] = totals.get(who, 0) + sum(reasons.values())
    assert totals.get(key) == 35 and totals.get("@127.0.0.1") == 8
    written = await audit_records(audited, lambda r: r.get("user") == "mallory", 5)
    assert len(written) == 5
    assert written[0]["subjects"] == ["mallory"] and written[0]["server"] == "owner/"
    assert "...[truncated: 70000 chars, sha256:" in written[0]["declared_client"]
    assert len(await audit_records(audited, lambda r: r.get("event") == "auth_failure", 2)) == 2


async def test_execution_started_is_written_before_the_code_runs_and_the_end_links_to_it(audited, tmp_path):
    started, release = tmp_path / "started", tmp_path / "release"
    notebook = f"wait-{tmp_path.name}.ipynb"
    write_notebook(audited.root / notebook, [WAITING_CELL.format(started=str(started), release=str(release))])
    async with mcp_client(audited) as client:
        cell_id = (await call(client, "get_notebook", path=notebook))["cells"][0]["id"]
        running = asyncio.create_task(call(client, "execute_notebook_cell", path=notebook, cell_id=cell_id))
        (start,) = await audit_records(
            audited, lambda r: r["event"] == "execution_started" and r.get("paths") == [notebook], 1, timeout=60
        )
        for _ in range(600):
            if started.exists() or running.done():
                break
            await asyncio.sleep(0.05)
        assert started.exists(), "the cell did not start"
        # The cell is still waiting on `release`: the call cannot have ended.
        ends = await audit_records(audited, lambda r: r.get("request_id") == start["request_id"], 1)
        assert [r["event"] for r in ends] == ["execution_started"]
        assert start["decision"] == "allow" and start["action"] == "execute" and start["subjects"][-1] == "role:owner"
        release.write_text("go")
        result = await running
    assert "released" in json.dumps(result)
    records = await audit_records(audited, lambda r: r.get("request_id") == start["request_id"], 2)
    assert [(r["event"], r.get("outcome")) for r in records] == [("execution_started", None), ("tool_call", "ok")]


async def test_a_server_killed_mid_cell_shows_the_started_execution_in_one_stream_with_another_server(
    audited, server_factory, tmp_path, capsys
):
    started, release = tmp_path / "started", tmp_path / "release"
    doomed = server_factory("doomed", config={"CollabMCP": {"owner": "bob"}}, env={"JUPYTERHUB_SERVER_NAME": "gpu"})
    write_notebook(doomed.root / "long.ipynb", [WAITING_CELL.format(started=str(started), release=str(release))])
    kernel_pid = None
    killed = False
    try:
        async with mcp_client(doomed) as client:
            cell_id = (await call(client, "get_notebook", path="long.ipynb"))["cells"][0]["id"]
            running = asyncio.create_task(
                client.call_tool("execute_notebook_cell", {"path": "long.ipynb", "cell_id": cell_id})
            )
            for _ in range(1200):
                if started.exists():
                    break
                await asyncio.sleep(0.05)
            kernel_pid = int(started.read_text())
            (start,) = await audit_records(doomed, lambda r: r["event"] == "execution_started", 1)
            doomed.proc.send_signal(signal.SIGKILL)
            doomed.proc.wait()
            killed = True
            running.cancel()
            with contextlib.suppress(BaseException):
                await running
    except Exception:
        # The client's connection died with the server, as intended.
        if not killed:
            raise
    finally:
        release.write_text("go")
        if kernel_pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(kernel_pid, signal.SIGKILL)
    assert start["server"] == "bob/gpu"

    # One stream holding both servers' chains, line by line interleaved (as a hub's log collects them).
    mine = audited.audit_log.read_text().splitlines(keepends=True)
    theirs = doomed.audit_log.read_text().splitlines(keepends=True)
    stream = tmp_path / "stream.jsonl"
    merged = [line for pair in zip(mine, theirs) for line in pair] + mine[len(theirs) :] + theirs[len(mine) :]
    stream.write_text("".join(merged))
    report = verify_files([stream])
    assert report.ok, report.broken
    assert set(report.chains) == {"owner/", "bob/gpu"}
    assert report.chains["bob/gpu"].records == len(theirs)

    capsys.readouterr()
    assert cli("query", str(stream), "--unfinished", "--json") == 0
    found = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["request_id"], r["server"]) for r in found] == [(start["request_id"], "bob/gpu")]
    assert cli("summary", str(stream), "--json") == 0
    servers = json.loads(capsys.readouterr().out)["servers"]
    assert [e["request_id"] for e in servers["bob/gpu"]["unfinished_executions"]] == [start["request_id"]]
    assert not servers.get("owner/", {}).get("unfinished_executions")

    tampered = merged.copy()
    index = min(i for i, line in enumerate(merged) if '"server":"bob/gpu"' in line and '"event":"tool_call"' in line)
    tampered.pop(index)
    stream.write_text("".join(tampered))
    broken = verify_files([stream]).broken
    assert broken is not None and "bob/gpu" in broken.reason
