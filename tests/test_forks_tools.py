"""Forks through the real server: listed by jupyter-collaboration, edited by fork_id, merged CRDT-wise, expired."""

from __future__ import annotations

import asyncio

from documents_fixtures import source_of, unique_name, write_file
from harness import Collaborator, call, call_error, eventually, mcp_client
from pycrdt import Text


def listed_forks(server, root_room_id: str) -> dict:
    response = server.api("GET", f"api/collaboration/fork/{root_room_id}")
    response.raise_for_status()
    return response.json()


async def test_fork_is_listed_edited_apart_and_merged_with_concurrent_root_edits(docs_server) -> None:
    path = write_file(docs_server, unique_name("fork"), "start\nmiddle\nend\n")
    async with mcp_client(docs_server) as client, Collaborator.join(docs_server, path, kind="file") as person:
        fork = await call(client, "fork_document", path=path, title="rewrite", description="an agent's draft")
        fork_id = fork["fork_id"]
        assert listed_forks(docs_server, person.room_id) == {
            fork_id: {
                "root_roomid": person.room_id,
                "synchronize": False,
                "title": "rewrite",
                "description": "an agent's draft",
            }
        }
        await call(client, "insert_text", path=path, text="FORKED ", position=0, fork_id=fork_id)
        in_fork = await call(client, "get_document", path=path, fork_id=fork_id)
        assert in_fork["content"] == "FORKED start\nmiddle\nend\n"
        assert in_fork["content_trust"]["untrusted_content"] is True
        assert (await call(client, "get_document", path=path))["content"] == "start\nmiddle\nend\n"

        person.doc.get("source", type=Text).insert(len("start\nmiddle\nend\n"), "person 😀\n")
        await eventually(
            lambda: call(client, "get_document", path=path),
            lambda document: document["content"] == "start\nmiddle\nend\nperson 😀\n",
        )

        merged = await call(client, "merge_document_fork", path=path, fork_id=fork_id)
        assert merged["merged"] is True
        expected = "FORKED start\nmiddle\nend\nperson 😀\n"
        await person.wait_for(lambda: source_of(person) == expected)
        await eventually(lambda: (docs_server.root / path).read_text() == expected)
        assert listed_forks(docs_server, person.room_id) == {}
        gone = await call_error(client, "get_document", path=path, fork_id=fork_id)
        assert gone["code"] == "not_found"
        history = (await call(client, "get_document_history", path=path))["versions"]
        assert history[0]["tool"] == "merge_document_fork"
        assert history[0]["changes"] == {"chars_added": 7, "chars_removed": 0}


async def test_synchronized_fork_pulls_root_changes_until_discarded(docs_server) -> None:
    path = write_file(docs_server, unique_name("sync"), "root\n")
    async with mcp_client(docs_server) as client, Collaborator.join(docs_server, path, kind="file") as person:
        fork = await call(client, "fork_document", path=path, synchronize=True)
        assert fork["synchronize"] is True
        await call(client, "insert_text", path=path, text="fork says hi\n", position=-1, fork_id=fork["fork_id"])
        person.doc.get("source", type=Text).insert(0, "# ")
        for _ in range(200):
            content = (await call(client, "get_document", path=path, fork_id=fork["fork_id"]))["content"]
            if content == "# root\nfork says hi\n":
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError(f"the root's change never reached the fork: {content!r}")
        closed = await call(client, "merge_document_fork", path=path, fork_id=fork["fork_id"], discard=True)
        assert closed == {"path": path, "fork_id": fork["fork_id"], "merged": False, "closed": True}
        assert listed_forks(docs_server, person.room_id) == {}
        assert (await call(client, "get_document", path=path))["content"] == "# root\n"


async def test_a_fork_answers_only_for_its_own_document(docs_server) -> None:
    first = write_file(docs_server, unique_name("mine"), "mine\n")
    other = write_file(docs_server, unique_name("other"), "other\n")
    async with mcp_client(docs_server) as client:
        fork = await call(client, "fork_document", path=first)
        refused = await call_error(client, "merge_document_fork", path=other, fork_id=fork["fork_id"])
        assert refused["code"] == "invalid_argument"
        wrong = await call_error(client, "insert_text", path=other, text="x", position=0, fork_id=fork["fork_id"])
        assert wrong["code"] == "invalid_argument"
        unknown = await call_error(client, "merge_document_fork", path=first, fork_id="0" * 32)
        assert unknown["code"] == "not_found"
        await call(client, "merge_document_fork", path=first, fork_id=fork["fork_id"])
        again = await call_error(client, "merge_document_fork", path=first, fork_id=fork["fork_id"])
        assert again["code"] == "not_found"


async def test_forks_never_merged_expire(server_factory) -> None:
    running = server_factory("fork-ttl", config={"CollabMCP": {"fork_ttl": 1.0}})
    path = write_file(running, "draft.txt", "draft\n")
    async with mcp_client(running) as client:
        fork = await call(client, "fork_document", path=path, title="short-lived")
        assert fork["expires_in_seconds"] == 1.0
        root_room = fork["root_room_id"]
        assert fork["fork_id"] in listed_forks(running, root_room)
        await eventually(lambda: listed_forks(running, root_room) == {})
        expired = await call_error(client, "get_document", path=path, fork_id=fork["fork_id"])
        assert expired["code"] == "not_found"


async def test_notebook_fork_edited_with_the_notebook_tools_and_merged(docs_server) -> None:
    from harness import write_notebook
    from jupyter_ydoc import YNotebook

    path = f"{unique_name('nbfork')}.ipynb"
    write_notebook(docs_server.root / path, ["a = 1"])
    async with mcp_client(docs_server) as client, Collaborator.join(docs_server, path) as person:
        fork_id = (await call(client, "fork_document", path=path, title="agent draft"))["fork_id"]
        inserted = await call(client, "insert_notebook_cell", path=path, content="b = 2", position=1, fork_id=fork_id)
        first = (await call(client, "get_notebook", path=path, fork_id=fork_id))["cells"][0]["id"]
        await call(client, "update_notebook_cell", path=path, cell_id=first, content="a = 10", fork_id=fork_id)
        live = await call(client, "get_notebook", path=path)
        assert [cell["source"] for cell in live["cells"]] == ["a = 1"]
        notebook = YNotebook(person.doc)
        with person.doc.transaction():
            notebook.ycells.append(notebook.create_ycell({"cell_type": "markdown", "source": "person's note"}))
        await call(client, "merge_document_fork", path=path, fork_id=fork_id)
        await person.wait_for(lambda: len(notebook.ycells) == 3)
        merged = await call(client, "get_notebook", path=path)
        sources = [cell["source"] for cell in merged["cells"]]
        assert sorted(sources) == ["a = 10", "b = 2", "person's note"]
        assert inserted["cell_id"] in [cell["id"] for cell in merged["cells"]]
        gone = await call_error(client, "insert_notebook_cell", path=path, content="x", position=0, fork_id=fork_id)
        assert gone["code"] == "not_found"
