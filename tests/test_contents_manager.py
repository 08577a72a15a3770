"""Files through Jupyter's ContentsManager: listings, reads and edits with a contents manager that keeps no local files,
and listings that honour `hide_globs` on the ordinary file manager.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from documents_fixtures import source_of
from harness import Collaborator, JupyterServer, call, call_error, eventually, mcp_client, start_server, write_notebook

from jupyter_collab_mcp_secure.rtc import text_kinds

PLUGINS = str(Path(__file__).parent / "plugins")


def _notebook(*sources: str) -> dict[str, Any]:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return dict(nb)


SEED = {
    "notebooks/demo.ipynb": _notebook("x = 21", "print(x * 2)"),
    "notebooks/deeper/other.ipynb": _notebook("pass"),
    "notes/readme.md": "# In memory\n",
    "notes/plan.txt": "first\nsecond\n",
    "notes/blob.dat": {"base64": base64.b64encode(b"\x00\x01binary\x02").decode()},
    "notes/.hidden.txt": "hidden\n",
    "notes/draft.private.md": "not for listings\n",
}


def _plugins_first() -> dict[str, str]:
    # The server imports this checkout (PYTHONPATH) and the test plugins beside it.
    return {"PYTHONPATH": os.pathsep.join(filter(None, [PLUGINS, os.environ.get("PYTHONPATH")]))}


@pytest.fixture(scope="module")
def memory_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    running = start_server(
        tmp_path_factory.mktemp("memory-contents"),
        config={
            "ServerApp": {"contents_manager_class": "memory_contents.MemoryContentsManager"},
            "MemoryContentsManager": {"seed": SEED, "hide_globs": ["*.private.*"]},
            # The default file id manager stats local files; this one follows the contents manager's events.
            "FileIdExtension": {"file_id_manager_class": "jupyter_server_fileid.manager.ArbitraryFileIdManager"},
        },
        env=_plugins_first(),
    )
    yield running
    running.stop()


def _served(server: JupyterServer, path: str) -> dict[str, Any]:
    response = server.api("GET", f"api/contents/{path}")
    response.raise_for_status()
    return response.json()


async def test_listings_and_reads_come_from_the_contents_manager(memory_server: JupyterServer) -> None:
    assert not any(memory_server.root.iterdir()), "the memory contents manager must not write the served folder"
    async with mcp_client(memory_server) as client:
        notebooks = await call(client, "list_notebooks")
        one = await call(client, "list_notebooks", path="notebooks/demo.ipynb")
        documents = await call(client, "list_documents", path="notes")
        markdown = await call(client, "list_documents", file_type="markdown")
        notebook = await call(client, "get_notebook", path="notebooks/demo.ipynb", include_collaboration_state=False)
        document = await call(client, "get_document", path="notes/plan.txt", include_collaboration_state=False)
        binary = await call_error(client, "get_document", path="notes/blob.dat")
        missing = await call_error(client, "get_document", path="notes/absent.txt")
    assert [entry["path"] for entry in notebooks["notebooks"]] == [
        "notebooks/demo.ipynb",
        "notebooks/deeper/other.ipynb",
    ]
    assert [entry["path"] for entry in one["notebooks"]] == ["notebooks/demo.ipynb"]
    # Binary content is sniffed through the manager; hidden names and hide_globs stay out.
    assert [(entry["path"], entry["size_bytes"]) for entry in documents["documents"]] == [
        ("notes/plan.txt", len("first\nsecond\n")),
        ("notes/readme.md", len("# In memory\n")),
    ]
    assert [entry["path"] for entry in markdown["documents"]] == ["notes/readme.md"]
    assert [cell["source"] for cell in notebook["cells"]] == ["x = 21", "print(x * 2)"]
    assert document["content"] == "first\nsecond\n"
    assert binary["code"] == "invalid_argument" and "binary" in binary["message"]
    assert missing["code"] == "not_found"


async def test_edits_are_live_and_saved_through_the_contents_manager(memory_server: JupyterServer) -> None:
    async with mcp_client(memory_server) as client:
        read = await call(client, "get_notebook", path="notebooks/demo.ipynb", include_collaboration_state=False)
        await call(
            client, "update_notebook_cell", path="notebooks/demo.ipynb", cell_id=read["cells"][0]["id"], content="x = 4"
        )
        async with Collaborator.join(memory_server, "notes/readme.md", kind="file") as person:
            await call(client, "insert_text", path="notes/readme.md", text="Edited. ", position=0)
            await person.wait_for(lambda: source_of(person) == "Edited. # In memory\n")
        history = await call(client, "get_document_history", path="notes/readme.md")
    assert history["versions"][0]["tool"] == "insert_text" and history["versions"][0]["author"]["user"] == "owner"
    saved = await eventually(
        lambda: _served(memory_server, "notebooks/demo.ipynb"),
        lambda model: model["content"]["cells"][0]["source"] == "x = 4",
    )
    assert saved["content"]["cells"][1]["source"] == "print(x * 2)"
    await eventually(
        lambda: _served(memory_server, "notes/readme.md"), lambda model: model["content"] == "Edited. # In memory\n"
    )
    assert not any(memory_server.root.iterdir())


async def test_listings_honour_hide_globs_of_the_file_manager(server: JupyterServer) -> None:
    """Jupyter's default `hide_globs` hide editor backups (`*~`): its file browser lists none, nor do listings."""
    folder = server.root / "globbed"
    write_notebook(folder / "shown.ipynb", ["1"])
    write_notebook(folder / "backup~" / "inside.ipynb", ["2"])
    (folder / "notes.md").write_text("# shown\n")
    (folder / "notes.md~").write_text("# an editor's backup\n")
    (folder / "backup~" / "inside.md").write_text("# below a hidden folder\n")
    # Links stay out as before: canonical paths would act on their targets.
    write_notebook(server.root / "globbed-target" / "linked.ipynb", ["3"])
    os.symlink(folder / "notes.md", folder / "link.md")
    os.symlink(server.root / "globbed-target", folder / "linked-folder")
    async with mcp_client(server) as client:
        notebooks = await call(client, "list_notebooks", path="globbed")
        documents = await call(client, "list_documents", path="globbed")
        named = await call(client, "list_documents", path="globbed/notes.md~")
        under_hidden = await call(client, "list_notebooks", path="globbed/backup~")
    assert [entry["path"] for entry in notebooks["notebooks"]] == ["globbed/shown.ipynb"]
    assert [entry["path"] for entry in documents["documents"]] == ["globbed/notes.md"]
    assert named["documents"] == [] and under_hidden["notebooks"] == []


class CountingContents:
    """A contents manager's `get` for text sniffing, noting which files were read whole."""

    def __init__(self) -> None:
        self.read: list[str] = []

    async def get(self, path: str, content: bool = True, type: str | None = None) -> dict[str, Any]:
        self.read.append(path)
        return {"type": "file", "format": "text", "content": "text\n"}


async def test_telling_text_from_binary_reads_within_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    contents = CountingContents()
    large = text_kinds.SNIFF_MAX_BYTES + 1
    files = [("a.txt", 10), ("image.png", 10), ("big.csv", large), ("big.out", large), ("unsized", None)]
    assert await text_kinds.text_files(contents, files) == [True, False, True, False, True]
    assert contents.read == ["a.txt", "unsized"]

    monkeypatch.setattr(text_kinds, "SNIFF_BUDGET_BYTES", 25)
    contents = CountingContents()
    files = [("one.txt", 20), ("two.txt", 20), ("three", 5), ("four.md", 1)]
    assert await text_kinds.text_files(contents, files) == [True, True, True, True]
    # Past the budget the name decides ("three" has none that names a text kind, but fits what is left).
    assert contents.read == ["one.txt", "three"]
