"""Executing cells through MCP on a real server with a real ipykernel, watched by a websocket collaborator."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import pytest
from harness import LEGACY, Collaborator, call, call_error, mcp_client, write_notebook
from jupyter_ydoc import YNotebook


def cells_of(collab: Collaborator) -> list[dict]:
    return YNotebook(collab.doc).get()["cells"]


def fresh_notebook(server, sources) -> str:
    path = f"run/{uuid.uuid4().hex[:8]}.ipynb"
    write_notebook(server.root / path, sources)
    return path


def sessions_for(server, path: str) -> list[dict]:
    return [s for s in server.api("GET", "api/sessions").json() if s["path"] == path]


@pytest.fixture(scope="module")
async def shared_nb(server) -> AsyncIterator[str]:
    """One notebook (and kernel) for the tests that do not need a kernel of their own."""
    path = fresh_notebook(server, ["x = 21"])
    yield path
    for session in sessions_for(server, path):
        server.api("DELETE", f"api/sessions/{session['id']}")


async def add_cell(client, path: str, source: str) -> str:
    result = await call(client, "insert_notebook_cell", path=path, content=source, position=0)
    return result["cell_id"]


async def test_outputs_stream_into_the_shared_cell_while_it_runs(server, shared_nb) -> None:
    async with Collaborator.join(server, shared_nb) as collab, mcp_client(server) as client:
        cell_id = await add_cell(
            client, shared_nb, "import time\nprint('first', flush=True)\ntime.sleep(1.5)\nprint('second')"
        )
        running = asyncio.create_task(call(client, "execute_notebook_cell", path=shared_nb, cell_id=cell_id))

        def cell() -> dict:
            return next(c for c in cells_of(collab) if c["id"] == cell_id)

        def ycell_state() -> str | None:
            return next(c for c in YNotebook(collab.doc).ycells if c["id"] == cell_id).get("execution_state")

        await collab.wait_for(lambda: any("first" in o.get("text", "") for o in cell()["outputs"]))
        assert not running.done(), "the collaborator should see output before the call returns"
        assert ycell_state() == "running" and cell()["execution_count"] is None
        result = await running
        assert result["status"] == "ok" and isinstance(result["execution_count"], int)
        assert result["outputs"] == [
            {"output_type": "stream", "name": "stdout", "text": "first\nsecond\n", "truncated": False}
        ]
        assert result["content_trust"]["untrusted_content"] is True
        await collab.wait_for(lambda: ycell_state() == "idle")
        assert cell()["execution_count"] == result["execution_count"]
        assert [o["text"] for o in cell()["outputs"]] == ["first\nsecond\n"]


async def test_session_is_registered_and_reused(server, shared_nb) -> None:
    async with mcp_client(server) as client:
        first = await call(
            client,
            "execute_notebook_cell",
            path=shared_nb,
            cell_id=await add_cell(client, shared_nb, "x = 21\ny = x * 2"),
        )
        second = await call(
            client, "execute_notebook_cell", path=shared_nb, cell_id=await add_cell(client, shared_nb, "y")
        )
    sessions = sessions_for(server, shared_nb)
    assert len(sessions) == 1 and sessions[0]["type"] == "notebook"
    assert first["kernel_id"] == second["kernel_id"] == sessions[0]["kernel"]["id"]
    assert second["outputs"][0]["data"] == {"text/plain": "42"}
    assert second["execution_count"] == first["execution_count"] + 1


async def test_runs_on_the_session_jupyterlab_opened(server) -> None:
    path = fresh_notebook(server, ["import os; os.getpid()"])
    created = server.api(
        "POST", "api/sessions", json={"path": path, "name": path, "type": "notebook", "kernel": {"name": "python3"}}
    ).json()
    try:
        async with mcp_client(server) as client:
            cell_id = (await call(client, "get_notebook", path=path))["cells"][0]["id"]
            result = await call(client, "execute_notebook_cell", path=path, cell_id=cell_id)
        assert result["kernel_id"] == created["kernel"]["id"]
        assert len(sessions_for(server, path)) == 1
    finally:
        server.api("DELETE", f"api/sessions/{created['id']}")


async def test_errors_return_ename_evalue_traceback(server, shared_nb) -> None:
    async with mcp_client(server) as client:
        cell_id = await add_cell(client, shared_nb, "1/0")
        result = await call(client, "execute_notebook_cell", path=shared_nb, cell_id=cell_id)
    assert result["status"] == "error"
    assert result["ename"] == "ZeroDivisionError" and "division by zero" in result["evalue"]
    assert "1/0" in result["traceback"] and "\x1b[" not in result["traceback"]
    assert result["outputs"][0]["output_type"] == "error"


async def test_markdown_cells_do_not_run(server, shared_nb) -> None:
    async with mcp_client(server) as client:
        inserted = await call(
            client, "insert_notebook_cell", path=shared_nb, content="# hi", position=0, cell_type="markdown"
        )
        error = await call_error(client, "execute_notebook_cell", path=shared_nb, cell_id=inserted["cell_id"])
        assert error["code"] == "invalid_argument"
        assert (
            await call_error(client, "execute_notebook_cell", path=shared_nb, cell_id=inserted["cell_id"], timeout=0)
        )["code"] == "invalid_argument"


async def test_timeout_interrupts_and_returns_partial_output(server, shared_nb) -> None:
    async with mcp_client(server) as client:
        cell_id = await add_cell(client, shared_nb, "import time\nprint('started', flush=True)\ntime.sleep(60)")
        error = await call_error(client, "execute_notebook_cell", path=shared_nb, cell_id=cell_id, timeout=2)
        assert error["code"] == "timeout" and error["interrupted"] is True
        assert error["outputs"][0]["text"].startswith("started")
        assert error["content_trust"]["untrusted_content"] is True
        # The kernel was interrupted, not left sleeping: the next cell runs at once.
        after = await call(
            client,
            "execute_notebook_cell",
            path=shared_nb,
            cell_id=await add_cell(client, shared_nb, "1+1"),
            timeout=20,
        )
        assert after["outputs"][0]["data"] == {"text/plain": "2"}
        cell = next(c for c in (await call(client, "get_notebook", path=shared_nb))["cells"] if c["id"] == cell_id)
        assert any(o.get("ename") == "KeyboardInterrupt" for o in cell["outputs"])


async def test_one_execution_at_a_time_per_kernel(server, shared_nb) -> None:
    async with mcp_client(server) as first, mcp_client(server, mode=LEGACY) as second:
        slow = await add_cell(
            first, shared_nb, "import time\nfor i in range(3):\n    print('slow', i, flush=True)\n    time.sleep(0.2)"
        )
        fast = await add_cell(first, shared_nb, "print('fast')")
        results = await asyncio.gather(
            call(first, "execute_notebook_cell", path=shared_nb, cell_id=slow),
            call(second, "execute_notebook_cell", path=shared_nb, cell_id=fast),
        )
    counts = sorted(result["execution_count"] for result in results)
    assert counts[1] == counts[0] + 1
    assert results[0]["outputs"][0]["text"] == "slow 0\nslow 1\nslow 2\n"
    assert results[1]["outputs"][0]["text"] == "fast\n"


async def test_progress_notifications_when_asked(server, shared_nb) -> None:
    seen: list[tuple[float, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, message))

    async with mcp_client(server) as client:
        cell_id = await add_cell(
            client, shared_nb, "import time\nfor i in range(3):\n    print(i, flush=True)\n    time.sleep(0.1)"
        )
        result = await client.call_tool(
            "execute_notebook_cell", {"path": shared_nb, "cell_id": cell_id}, progress_callback=on_progress
        )
    assert not result.is_error
    assert seen and seen[0][1] == "running"
    assert any(message and "stream" in message for _, message in seen)


async def test_outputs_handed_back_are_bounded(server, shared_nb) -> None:
    async with mcp_client(server) as client:
        cell_id = await add_cell(client, shared_nb, "print('x' * 100_000)")
        result = await call(client, "execute_notebook_cell", path=shared_nb, cell_id=cell_id)
        stream = result["outputs"][0]
        assert stream["truncated"] is True and len(stream["text"]) < 100_000
        # The notebook itself keeps the whole output.
        async with Collaborator.join(server, shared_nb) as collab:
            cell = next(c for c in cells_of(collab) if c["id"] == cell_id)
            assert len(cell["outputs"][0]["text"]) == 100_001


async def test_dead_kernel_is_reported_and_the_next_call_works(server) -> None:
    path = fresh_notebook(server, ["import os\nprint('bye', flush=True)\nos._exit(1)", "1+1"])
    try:
        async with mcp_client(server) as client:
            first, second = [c["id"] for c in (await call(client, "get_notebook", path=path))["cells"]]
            error = await call_error(client, "execute_notebook_cell", path=path, cell_id=first)
            assert error["code"] == "unavailable" and "kernel died" in error["message"]
            result = await call(client, "execute_notebook_cell", path=path, cell_id=second, timeout=30)
            assert result["status"] == "ok" and result["outputs"][0]["data"] == {"text/plain": "2"}
    finally:
        for session in sessions_for(server, path):
            server.api("DELETE", f"api/sessions/{session['id']}")


async def test_client_going_away_lets_the_execution_finish_and_is_audited(server, shared_nb) -> None:
    async with Collaborator.join(server, shared_nb) as collab:
        async with mcp_client(server) as client:
            cell_id = await add_cell(client, shared_nb, "import time\ntime.sleep(1)\nprint('finished anyway')")
            running = asyncio.create_task(
                client.call_tool("execute_notebook_cell", {"path": shared_nb, "cell_id": cell_id})
            )
            await collab.wait_for(
                lambda: (
                    next(c for c in YNotebook(collab.doc).ycells if c["id"] == cell_id).get("execution_state")
                    == "running"
                )
            )
            running.cancel()
        await collab.wait_for(
            lambda: any(
                "finished anyway" in o.get("text", "")
                for c in cells_of(collab)
                if c["id"] == cell_id
                for o in c.get("outputs", [])
            )
        )
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        records = [json.loads(line) for line in server.audit_log.read_text().splitlines() if line.strip()]
        executions = [
            r for r in records if r.get("tool") == "execute_notebook_cell" and r.get("outcome") == "client_disconnected"
        ]
        if executions:
            break
        assert asyncio.get_running_loop().time() < deadline, "the audit log has no record of the abandoned call"
        await asyncio.sleep(0.1)
    # The detached execution's end is audited too, tied to the abandoned call by its request id.
    request_id = executions[-1]["request_id"]
    while True:
        records = [json.loads(line) for line in server.audit_log.read_text().splitlines() if line.strip()]
        finished = [r for r in records if r.get("event") == "execution_finished" and r.get("request_id") == request_id]
        if finished:
            break
        assert asyncio.get_running_loop().time() < deadline + 10, "the detached execution's end was not audited"
        await asyncio.sleep(0.1)
    assert finished[0]["outcome"] == "ok" and finished[0]["user"] == "owner"
