"""Long silent work keeps a server alive under a real hub: the hub's last_activity advances during the call."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone

import pytest
from harness import call, mcp_client, write_notebook
from hub_fixtures import Hub

pytestmark = pytest.mark.xdist_group("hub")

SILENT_SECONDS = 20


def hub_last_activity(hub: Hub, user: str) -> datetime:
    model = hub.server_model(user)
    assert model is not None and model["last_activity"], model
    return datetime.fromisoformat(model["last_activity"].replace("Z", "+00:00"))


async def test_the_hub_sees_activity_during_a_long_silent_cell(alice_server) -> None:
    hub = alice_server
    write_notebook(hub.homes / "alice" / "silent.ipynb", [f"import time\ntime.sleep({SILENT_SECONDS})"])
    async with mcp_client(hub.endpoint("alice", hub.user_token("alice"))) as client:
        notebook = await call(client, "get_notebook", path="silent.ipynb")
        launched = datetime.now(timezone.utc)
        running = asyncio.create_task(
            call(client, "execute_notebook_cell", path="silent.ipynb", cell_id=notebook["cells"][0]["id"], timeout=120)
        )
        # Without a bump, nothing after the request's own arrival (and the kernel going busy) counts as
        # activity until the call returns; with one, the hub hears of a recent time every report.
        wanted = launched + timedelta(seconds=4)
        bound = time.monotonic() + SILENT_SECONDS - 4
        seen = hub_last_activity(hub, "alice")
        while seen < wanted and time.monotonic() < bound and not running.done():
            await asyncio.sleep(0.5)
            seen = hub_last_activity(hub, "alice")
        in_flight = not running.done()
        result = await running
    assert result["status"] == "ok"
    assert seen >= wanted and in_flight, f"hub last_activity {seen} while the call ran since {launched}"
