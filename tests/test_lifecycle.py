"""A server that MCP has used stops promptly and cleanly on SIGINT and on SIGTERM, as process managers send them."""

from __future__ import annotations

import signal
import subprocess

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
