"""Rooms the RTC adapter opens: kept alive while used, cleaned up when nobody needs them."""

from __future__ import annotations

from harness import Collaborator, call, eventually, mcp_client, write_notebook


async def open_rooms(client) -> set[str]:
    sessions = await call(client, "get_active_sessions")
    return {session["session_id"] for session in sessions["sessions"]}


async def test_rooms_opened_for_mcp_are_closed_when_idle_but_not_under_a_person(server_factory) -> None:
    quick = server_factory("idle-rooms", config={"CollabMCP": {"room_idle_cleanup_delay": 0.3}})
    write_notebook(quick.root / "alone.ipynb", ["a = 1"])
    write_notebook(quick.root / "shared.ipynb", ["b = 2"])
    async with mcp_client(quick) as client:
        alone = (await call(client, "create_notebook_session", path="alone.ipynb"))["session_id"]
        assert alone in await open_rooms(client)
        await eventually(lambda: open_rooms(client), lambda rooms: alone not in rooms)
        # Reopening after the cleanup gives the same document, loaded again from disk.
        again = await call(client, "get_notebook", path="alone.ipynb")
        assert [cell["source"] for cell in again["cells"]] == ["a = 1"]

        async with Collaborator.join(quick, "shared.ipynb") as person:
            await call(client, "get_notebook", path="shared.ipynb")
            # Used after the shared room, the alone room closing proves the shared one's idle delay has passed too.
            await call(client, "get_notebook", path="alone.ipynb")
            await eventually(lambda: open_rooms(client), lambda rooms: alone not in rooms)
            # A room a person is in is left to upstream's own cleanup.
            assert person.room_id in await open_rooms(client)
