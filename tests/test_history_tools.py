"""History and restore through the real server, for text files and notebooks, across a restart."""

from __future__ import annotations

from documents_fixtures import (
    fork_holds,
    join_fork,
    source_of,
    unique_name,
    write_file,
)
from harness import Collaborator, call, call_error, eventually, mcp_client, start_server, write_notebook
from pycrdt import Array, Map, Text


async def test_history_lists_authors_and_changes_and_restore_is_an_undoable_forward_edit(docs_server) -> None:
    path = write_file(docs_server, unique_name("history"), "alpha\n")
    async with (
        mcp_client(docs_server, client_name="history-agent") as client,
        Collaborator.join(docs_server, path, kind="file") as person,
    ):
        await call(client, "insert_text", path=path, text="beta\n", position=-1)
        text = person.doc.get("source", type=Text)
        await person.wait_for(lambda: source_of(person) == "alpha\nbeta\n")
        text.insert(0, "# ")  # a person in JupyterLab
        for _ in range(200):
            if (await call(client, "get_document", path=path))["content"].startswith("# "):
                break
        else:
            raise AssertionError("the person's edit never reached the server")
        await call(client, "delete_text", path=path, position=0, length=2)
        await call(client, "update_document", path=path, content="alpha\nBETA 😀\n")

        history = await call(client, "get_document_history", path=path)
        versions = history["versions"]
        agent = {"user": "owner", "agent": "history-agent"}
        assert [v["author"] for v in versions] == [agent, agent, None, agent, None]
        assert [v["tool"] for v in versions[:2]] == ["update_document", "delete_text"]
        assert versions[0]["changes"] == {"chars_added": 6, "chars_removed": 4}
        assert versions[1]["changes"] == {"chars_added": 0, "chars_removed": 2}
        assert versions[2]["changes"] == {"chars_added": 2, "chars_removed": 0}
        assert versions[4]["changes"] == {"chars_added": 6, "chars_removed": 0}
        assert len({v["id"] for v in versions}) == 5
        assert (await call(client, "get_document_history", path=path, limit=2))["versions"] == versions[:2]

        restored = await call(client, "restore_document_version", path=path, version_id=versions[3]["id"])
        assert restored["changed"] is True
        await person.wait_for(lambda: source_of(person) == "alpha\nbeta\n")
        await eventually(lambda: (docs_server.root / path).read_text() == "alpha\nbeta\n")

        after = (await call(client, "get_document_history", path=path))["versions"]
        assert after[0]["tool"] == "restore_document_version"
        assert [v["id"] for v in after[1:]] == [v["id"] for v in versions]
        # The restore is a version like any other: restoring what preceded it undoes it.
        await call(client, "restore_document_version", path=path, version_id=after[1]["id"])
        await person.wait_for(lambda: source_of(person) == "alpha\nBETA 😀\n")

        missing = await call_error(client, "restore_document_version", path=path, version_id="v1-00000000")
        assert missing["code"] == "not_found"
        bad_limit = await call_error(client, "get_document_history", path=path, limit=0)
        assert bad_limit["code"] == "invalid_argument"


def markdown_cell(cell_id: str, source: str) -> Map:
    return Map({"id": cell_id, "cell_type": "markdown", "source": Text(source), "metadata": Map()})


async def test_notebook_history_and_restore_across_a_merge_and_a_deleted_cell(docs_server) -> None:
    path = unique_name("history", ".ipynb")
    write_notebook(docs_server.root / path, ["a = 1", "b = 2", ("markdown", "# end")])
    async with mcp_client(docs_server) as client, Collaborator.join(docs_server, path, kind="notebook") as person:
        cells = person.doc.get("cells", type=Array)
        await person.wait_for(lambda: len(cells) == 3)
        original = [cell["id"] for cell in cells]

        fork = await call(client, "fork_document", path=path, title="more notes")
        async with join_fork(docs_server, fork["fork_id"]) as forker:
            forker.doc.get("cells", type=Array).append(markdown_cell("from-fork", "added in the fork"))
            await fork_holds(docs_server, fork["fork_id"], lambda doc: len(doc.get("cells", type=Array)) == 4)
            merged = await call(client, "merge_document_fork", path=path, fork_id=fork["fork_id"])
            assert merged["merged"] is True
        await person.wait_for(lambda: [cell["id"] for cell in cells] == original + ["from-fork"])
        del cells[1]  # then a person deletes a cell in JupyterLab
        after_delete = [original[0], original[2], "from-fork"]
        await eventually(lambda: cell_ids(client, path), lambda ids: ids == after_delete)

        history = await call(client, "get_document_history", path=path)
        assert history["kind"] == "notebook"
        deletion, merge, initial = history["versions"]
        assert deletion["author"] is None and deletion["changes"]["cells_removed"] == 1
        assert merge["tool"] == "merge_document_fork"
        assert merge["changes"] == {"cells_added": 1, "cells_removed": 0, "cells_changed": 0}
        assert initial["changes"]["cells_added"] == 3

        await call(client, "restore_document_version", path=path, version_id=merge["id"])
        await person.wait_for(lambda: [cell["id"] for cell in cells] == original + ["from-fork"])
        restored = (await call(client, "get_document_history", path=path))["versions"][0]
        assert restored["tool"] == "restore_document_version"
        assert restored["changes"]["cells_added"] == 1
        await eventually(lambda: original[1] in (docs_server.root / path).read_text())

        await call(client, "restore_document_version", path=path, version_id=initial["id"])
        await person.wait_for(lambda: [cell["id"] for cell in cells] == original)
        assert await cell_ids(client, path) == original


async def cell_ids(client, path: str) -> list[str]:
    return [cell["id"] for cell in (await call(client, "get_notebook", path=path))["cells"]]


async def test_history_survives_a_restart_and_lives_outside_the_root(server_factory) -> None:
    running = server_factory("history-restart")
    path = write_file(running, "kept.txt", "one\n")
    async with mcp_client(running, client_name="restart-agent") as client:
        await call(client, "insert_text", path=path, text="two\n", position=-1)
        before = (await call(client, "get_document_history", path=path))["versions"]
    await eventually(lambda: (running.root / path).read_text() == "one\ntwo\n")
    running.stop()
    again = start_server(running.workdir)
    try:
        async with mcp_client(again) as client:
            after = (await call(client, "get_document_history", path=path))["versions"]
            assert [v["id"] for v in after] == [v["id"] for v in before]
            assert after[0]["author"] == {"user": "owner", "agent": "restart-agent"}
            await call(client, "restore_document_version", path=path, version_id=after[-1]["id"])
            assert (await call(client, "get_document", path=path))["content"] == "one\n"
    finally:
        again.stop()
    assert not list(running.root.rglob("*ystore*")) and not list(running.root.rglob("*.sqlite"))
    assert not (running.workdir / ".jupyter_ystore.db").exists()
    assert (running.workdir / "data" / "collab_mcp_secure" / "ystore.sqlite").exists()
