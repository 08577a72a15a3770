"""A server that MCP has used stops promptly and cleanly on SIGINT and on SIGTERM, as process managers send them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import time

import pytest
from harness import LEGACY, call, mcp_client

# The requirement is seconds, not the 10-30 s after which spawners escalate to SIGKILL; the bound is
# a little generous for a loaded test machine.
STOP_BOUND_SECONDS = 5


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
async def test_stops_in_seconds_after_mcp_use_and_runs_the_shutdown(server_factory, signum) -> None:
    server = server_factory(name=signum.name)
    path = "notebooks/demo.ipynb"
    async with mcp_client(server, mode=LEGACY) as legacy:
        async with mcp_client(server) as client:
            notebook = await call(client, "get_notebook", path=path)
            await call(client, "execute_notebook_cell", path=path, cell_id=notebook["cells"][0]["id"])
            await call(client, "get_document", path="notes.txt")
        await call(legacy, "create_notebook_session", path=path)
        # The legacy session (and its rooms) are still open when the signal arrives.
        server.proc.send_signal(signum)
        try:
            server.proc.wait(timeout=STOP_BOUND_SECONDS)
            stopped = True
        except subprocess.TimeoutExpired:
            server.proc.kill()  # so the clients' exits fail fast instead of hanging on a stuck server
            stopped = False
    assert stopped, f"the server was still running {STOP_BOUND_SECONDS} s after {signum.name}"
    log = server.log_text()
    # The extension's shutdown ran to its end: the audit chain head is written last.
    assert "audit chain head (shutdown)" in log, log[-3000:]


async def test_a_call_cut_off_by_the_stop_is_audited_before_the_chain_head(server_factory) -> None:
    server = server_factory(name="inflight")
    path = "notebooks/demo.ipynb"
    async with mcp_client(server) as client:
        notebook = await call(client, "get_notebook", path=path)
        cell_id = notebook["cells"][0]["id"]
        await call(client, "update_notebook_cell", path=path, cell_id=cell_id, content="import time\ntime.sleep(600)")
        running = asyncio.create_task(client.call_tool("execute_notebook_cell", {"path": path, "cell_id": cell_id}))
        deadline = time.monotonic() + 60
        while not any(kernel["execution_state"] == "busy" for kernel in server.api("GET", "api/kernels").json()):
            assert time.monotonic() < deadline and not running.done(), "the cell never started"
            await asyncio.sleep(0.2)
        server.proc.send_signal(signal.SIGTERM)
        try:
            server.proc.wait(timeout=STOP_BOUND_SECONDS)
            stopped = True
        except subprocess.TimeoutExpired:
            server.proc.kill()
            stopped = False
        running.cancel()
        with contextlib.suppress(BaseException):
            await running
    assert stopped, f"the server was still running {STOP_BOUND_SECONDS} s after SIGTERM"
    records = [json.loads(line) for line in server.audit_log.read_text().splitlines()]
    executions = [r for r in records if r.get("event") == "tool_call" and r.get("tool") == "execute_notebook_cell"]
    assert executions and executions[-1]["outcome"] != "ok"
    # The head written at shutdown is the hash of the last record: nothing was lost after it.
    assert f"audit chain head (shutdown): {records[-1]['hash']}" in server.log_text()
