"""The hub stops a server MCP has used with its first signal (SIGINT): no SIGTERM or SIGKILL needed."""

from __future__ import annotations

import pytest
from harness import LEGACY, call, mcp_client, write_notebook

pytestmark = pytest.mark.xdist_group("hub")


async def test_the_hubs_sigint_stops_a_server_after_mcp_use(hub) -> None:
    write_notebook(hub.homes / "carol" / "work.ipynb", ["y = 2 * 21"])
    hub.start_server("carol")
    pid = hub.server_pid("carol")
    async with mcp_client(hub.endpoint("carol", hub.user_token("carol")), mode=LEGACY) as client:
        notebook = await call(client, "get_notebook", path="work.ipynb")
        await call(client, "execute_notebook_cell", path="work.ipynb", cell_id=notebook["cells"][0]["id"])
        # The session, its room and the kernel are still open when the hub stops the server.
        hub.stop_server("carol")
    log = hub.log_text()
    assert f"Interrupting {pid}" in log
    assert f"Terminating {pid}" not in log and f"Killing {pid}" not in log
    shutdown_heads = [line for line in log.splitlines() if "audit chain head (shutdown)" in line]
    assert any("carol.jsonl" in line for line in shutdown_heads), shutdown_heads
