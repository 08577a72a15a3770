"""Editing notebooks through MCP on a real server, with a websocket collaborator in the room."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from pathlib import Path

import nbformat
import pytest
from harness import Collaborator, call, call_error, eventually, mcp_client, write_notebook
from jupyter_ydoc import YNotebook
from pycrdt import Doc, Text


def fresh_notebook(server, sources) -> str:
    path = f"edit/{uuid.uuid4().hex[:8]}.ipynb"
    write_notebook(server.root / path, sources)
    return path


def cells_of(collab: Collaborator) -> list[dict]:
    return YNotebook(collab.doc).get()["cells"]


async def disk_cells(server, path: str, predicate, timeout: float = 20) -> list[dict]:
    """The cells in the file once `predicate` holds for them (the room saves after a short debounce)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            saved = json.loads((server.root / path).read_text())
        except json.JSONDecodeError:
            saved = {"cells": None}  # caught mid-save: the contents manager writes the file in place
        cells = [
            {**cell, "source": "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]}
            for cell in saved["cells"] or []
        ]
        if saved["cells"] is not None and predicate(cells):
            return cells
        assert asyncio.get_running_loop().time() < deadline, f"file never reached the expected state: {cells}"
        await asyncio.sleep(0.1)


async def test_insert_update_delete_reach_collaborator_and_disk(server) -> None:
    path = fresh_notebook(server, ["x = 1"])
    async with Collaborator.join(server, path) as collab, mcp_client(server) as client:
        first = (await call(client, "get_notebook", path=path))["cells"][0]["id"]
        inserted = await call(
            client, "insert_notebook_cell", path=path, content="# Title", position=0, cell_type="markdown"
        )
        assert inserted["index"] == 0 and inserted["cell_type"] == "markdown"
        await collab.wait_for(lambda: [c["id"] for c in cells_of(collab)] == [inserted["cell_id"], first])
        updated = await call(client, "update_notebook_cell", path=path, cell_id=first, content="x = 2")
        assert updated["changed"] and updated["index"] == 1
        await collab.wait_for(lambda: cells_of(collab)[1]["source"] == "x = 2")
        await call(client, "delete_notebook_cell", path=path, cell_id=inserted["cell_id"])
        await collab.wait_for(lambda: [c["id"] for c in cells_of(collab)] == [first])
        on_disk = await disk_cells(server, path, lambda cells: [c["source"] for c in cells] == ["x = 2"])
        assert on_disk[0]["id"] == first


async def test_insert_position_and_type_are_checked(server) -> None:
    path = fresh_notebook(server, ["a", "b"])
    async with mcp_client(server) as client:
        for position in (-1, 3):
            error = await call_error(client, "insert_notebook_cell", path=path, content="x", position=position)
            assert error["code"] == "invalid_argument" and "between 0 and 2" in error["message"]
        error = await call_error(client, "insert_notebook_cell", path=path, content="x", position=0, cell_type="raw")
        assert error["code"] == "invalid_argument"
        at_end = await call(client, "insert_notebook_cell", path=path, content="c", position=2)
        notebook = await call(client, "get_notebook", path=path)
        assert [c["source"] for c in notebook["cells"]] == ["a", "b", "c"]
        assert notebook["cells"][2]["id"] == at_end["cell_id"] and notebook["cells"][2]["outputs"] == []


async def test_unknown_cell_is_not_found(server) -> None:
    path = fresh_notebook(server, ["a"])
    async with mcp_client(server) as client:
        for tool, args in (
            ("update_notebook_cell", {"content": "x"}),
            ("delete_notebook_cell", {}),
            ("execute_notebook_cell", {}),
        ):
            error = await call_error(client, tool, path=path, cell_id="no-such-cell", **args)
            assert error["code"] == "not_found", tool


async def test_update_is_a_minimal_edit_that_keeps_concurrent_typing(server) -> None:
    """A person types on another line of the same cell while the agent's update is in flight: both edits stay."""
    path = fresh_notebook(server, ["a = 1\nb = 2\nc = 3"])
    async with Collaborator.join(server, path) as collab, mcp_client(server) as client:
        cell_id = cells_of(collab)[0]["id"]
        # The person's tab: edits made before it hears of the agent's change, delivered after it.
        offline = Doc()
        offline.apply_update(collab.doc.get_update())
        before = offline.get_state()
        offline_text: Text = YNotebook(offline).ycells[0]["source"]
        offline_text.insert(len(offline_text), "  # typed by a person")

        await call(client, "update_notebook_cell", path=path, cell_id=cell_id, content="a = 100\nb = 2\nc = 3")
        await collab.wait_for(lambda: cells_of(collab)[0]["source"].startswith("a = 100"))
        collab.doc.apply_update(offline.get_update(before))

        merged = "a = 100\nb = 2\nc = 3  # typed by a person"
        await collab.wait_for(lambda: cells_of(collab)[0]["source"] == merged)
        await eventually(lambda: call(client, "get_notebook", path=path), lambda nb: nb["cells"][0]["source"] == merged)


async def test_cell_type_change_converts_the_cell(server) -> None:
    path = server.root / f"edit/{uuid.uuid4().hex[:8]}.ipynb"
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                "print(1)", execution_count=3, outputs=[nbformat.v4.new_output("stream", text="1\n")]
            )
        ]
    )
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    relative = path.relative_to(server.root).as_posix()
    async with Collaborator.join(server, relative) as collab, mcp_client(server) as client:
        cell_id = cells_of(collab)[0]["id"]
        result = await call(
            client, "update_notebook_cell", path=relative, cell_id=cell_id, content="# Now text", cell_type="markdown"
        )
        assert result["cell_type"] == "markdown"
        await collab.wait_for(lambda: cells_of(collab)[0]["cell_type"] == "markdown")
        cell = cells_of(collab)[0]
        assert cell["id"] == cell_id and cell["source"] == "# Now text"
        assert "outputs" not in cell and "execution_count" not in cell
        back = await call(
            client, "update_notebook_cell", path=relative, cell_id=cell_id, content="2+2", cell_type="code"
        )
        assert back["cell_type"] == "code"
        read = (await call(client, "get_notebook", path=relative))["cells"][0]
        assert read["cell_type"] == "code" and read["outputs"] == [] and read["execution_count"] is None
        on_disk = await disk_cells(server, relative, lambda cells: cells[0]["source"] == "2+2")
        nbformat.validate(nbformat.from_dict({**json.loads(path.read_text()), "cells": on_disk}))


async def test_expected_version_turns_stale_writes_into_conflicts(server) -> None:
    path = fresh_notebook(server, ["a = 1", "b = 2"])
    async with Collaborator.join(server, path) as collab, mcp_client(server) as client:
        read = await call(client, "get_notebook", path=path)
        first, second = read["cells"]
        # A person edits the first cell after the agent read the notebook.
        YNotebook(collab.doc).ycells[0]["source"].insert(0, "# person\n")
        await eventually(
            lambda: call(client, "get_notebook", path=path), lambda nb: nb["cells"][0]["version"] != first["version"]
        )

        stale = await call_error(
            client,
            "update_notebook_cell",
            path=path,
            cell_id=first["id"],
            content="a = 2",
            expected_version=first["version"],
        )
        assert stale["code"] == "conflict"
        for tool, args in (
            ("update_notebook_cell", {"cell_id": first["id"], "content": "x"}),
            ("delete_notebook_cell", {"cell_id": first["id"]}),
            ("insert_notebook_cell", {"content": "x", "position": 0}),
        ):
            error = await call_error(client, tool, path=path, expected_version=read["version"], **args)
            assert error["code"] == "conflict", tool
        # The untouched cell's own version still holds; the person's text is intact.
        ok = await call(
            client,
            "update_notebook_cell",
            path=path,
            cell_id=second["id"],
            content="b = 3",
            expected_version=second["version"],
        )
        assert ok["changed"]
        fresh = await call(client, "get_notebook", path=path)
        assert fresh["cells"][0]["source"] == "# person\na = 1"
        await call(
            client, "insert_notebook_cell", path=path, content="c", position=2, expected_version=fresh["version"]
        )


async def test_ten_clients_insert_while_a_person_edits(server) -> None:
    """Every acknowledged insert is in the document exactly once, and on disk after the save."""
    path = fresh_notebook(server, ["start"])
    per_client = 3

    async def agent(number: int) -> list[str]:
        ids = []
        async with mcp_client(server, client_name=f"agent-{number}") as client:
            for round_ in range(per_client):
                result = await call(
                    client, "insert_notebook_cell", path=path, content=f"agent {number} cell {round_}", position=0
                )
                ids.append(result["cell_id"])
        return ids

    async def person(collab: Collaborator) -> None:
        for round_ in range(10):
            nb = YNotebook(collab.doc)
            nb.ycells.append(nb.create_ycell({"cell_type": "code", "source": f"person {round_}", "metadata": {}}))
            text = nb.ycells[0]["source"]
            text.insert(len(text), " typed")
            await asyncio.sleep(0.02)

    async with Collaborator.join(server, path) as collab:
        results = await asyncio.gather(*(agent(number) for number in range(10)), person(collab))
        acknowledged = [cell_id for ids in results[:10] for cell_id in ids]
        assert len(set(acknowledged)) == 10 * per_client

        def complete(cells: list[dict]) -> bool:
            ids = [c["id"] for c in cells]
            return set(acknowledged) <= set(ids) and sum(c["source"].startswith("person") for c in cells) == 10

        await collab.wait_for(lambda: complete(cells_of(collab)))
        async with mcp_client(server) as client:
            served = (await call(client, "get_notebook", path=path))["cells"]
        ids = [c["id"] for c in served]
        assert all(ids.count(cell_id) == 1 for cell_id in acknowledged)
        assert len(ids) == len(set(ids)) == 1 + 10 * per_client + 10
        on_disk = await disk_cells(server, path, complete)
        assert sorted(c["id"] for c in on_disk) == sorted(ids)


async def test_reopening_after_restart_does_not_duplicate_cells(server_factory) -> None:
    first = server_factory("restart")
    path = "notebooks/restart.ipynb"
    write_notebook(first.root / path, ["a = 1", ("markdown", "# Notes")])
    async with Collaborator.join(first, path) as collab, mcp_client(first) as client:
        await call(client, "insert_notebook_cell", path=path, content="b = 2", position=1)
        YNotebook(collab.doc).ycells[0]["source"].insert(0, "# person\n")
        before = await call(client, "get_notebook", path=path)
        await disk_cells(first, path, lambda cells: len(cells) == 3 and cells[0]["source"].startswith("# person"))
    expected = [(c["id"], c["source"]) for c in before["cells"]]
    first.stop()

    again = server_factory("restart", populate_root=False, root=first.root, token=first.token)
    for _ in range(2):
        async with mcp_client(again) as client:
            reopened = await call(client, "get_notebook", path=path)
        assert [(c["id"], c["source"]) for c in reopened["cells"]] == expected
        async with Collaborator.join(again, path) as collab:
            assert [(c["id"], c["source"]) for c in cells_of(collab)] == expected
    on_disk = json.loads((Path(again.root) / path).read_text())["cells"]
    assert [(c["id"], "".join(c["source"])) for c in on_disk] == expected


@pytest.mark.timeout(120)
async def test_a_huge_cell_rewrite_is_bounded(server) -> None:
    """Lines from a small alphabet make a line diff quadratic: the bounded diff still lands the exact source."""
    rng = random.Random(5)
    old = "".join(rng.choice(["a = 1\n", "b = 2\n", "c = 3\n"]) for _ in range(40_000))
    new = "".join(rng.choice(["a = 1\n", "b = 2\n", "c = 3\n"]) for _ in range(40_000))
    path = fresh_notebook(server, [old])
    async with mcp_client(server) as client, Collaborator.join(server, path) as person:
        cell_id = (await call(client, "get_notebook", path=path, include_collaboration_state=False))["cells"][0]["id"]
        result = await call(client, "update_notebook_cell", path=path, cell_id=cell_id, content=new)
        assert result["changed"] is True
        await person.wait_for(lambda: cells_of(person) and cells_of(person)[0]["source"] == new)
