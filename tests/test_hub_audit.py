"""Audit under a real hub: a server killed mid-cell leaves its start record, and two servers' chains verify in one stream."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

import pytest
from harness import call, mcp_client, write_notebook
from hub_fixtures import Hub, read_audit

from jupyter_collab_mcp_secure.audit.verify import verify_files

pytestmark = pytest.mark.xdist_group("hub")

WAITING_CELL = """\
import os, pathlib, time
pathlib.Path({started!r}).write_text(str(os.getpid()))
while not os.path.exists({release!r}):
    time.sleep(0.05)
"""


async def test_a_hub_server_killed_mid_cell_leaves_its_start_record_and_both_chains_verify(
    alice_server: Hub, tmp_path
) -> None:
    hub = alice_server
    started, release = tmp_path / "started", tmp_path / "release"
    write_notebook(hub.homes / "bob" / "long.ipynb", [WAITING_CELL.format(started=str(started), release=str(release))])
    hub.start_server("bob")
    async with mcp_client(hub.endpoint("alice", hub.user_token("alice"))) as client:
        await call(client, "list_notebooks")
    kernel_pid = None
    try:
        async with mcp_client(hub.endpoint("bob", hub.user_token("bob"))) as client:
            cell_id = (await call(client, "get_notebook", path="long.ipynb"))["cells"][0]["id"]
            running = asyncio.create_task(
                client.call_tool("execute_notebook_cell", {"path": "long.ipynb", "cell_id": cell_id})
            )
            for _ in range(1200):
                if started.exists() or running.done():
                    break
                await asyncio.sleep(0.05)
            kernel_pid = int(started.read_text())
            os.kill(hub.server_pid("bob"), signal.SIGKILL)
            running.cancel()
            with contextlib.suppress(BaseException):
                await running
    except Exception:
        pass  # the client's connection died with the server, as intended
    finally:
        release.write_text("go")
        if kernel_pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(kernel_pid, signal.SIGKILL)
        hub.stop_server("bob")

    bobs = read_audit(hub, "bob")
    (start,) = [r for r in bobs if r["event"] == "execution_started" and r.get("paths") == ["long.ipynb"]]
    assert start["server"] == "bob/" and start["user"] == "bob"
    assert [r["event"] for r in bobs if r.get("request_id") == start["request_id"]] == ["execution_started"]

    # One stream as a hub's log pipeline collects it: both servers' lines interleaved, each chain verified.
    mine = hub.audit_log("alice").read_text().splitlines(keepends=True)
    theirs = hub.audit_log("bob").read_text().splitlines(keepends=True)
    merged = [line for pair in zip(mine, theirs) for line in pair] + mine[len(theirs) :] + theirs[len(mine) :]
    stream = tmp_path / "hub-stream.jsonl"
    stream.write_text("".join(merged))
    report = verify_files([stream])
    assert report.ok, report.broken
    assert {"alice/", "bob/"} <= set(report.chains)
