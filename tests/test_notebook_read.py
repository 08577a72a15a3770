"""Read-side notebook tools against the live shared model."""

from __future__ import annotations

import base64
import json
import uuid

import nbformat
from harness import Collaborator, JupyterServer, call, call_error, mcp_client, write_notebook
from jupyter_ydoc import YNotebook


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def test_get_notebook_sees_a_collaborator_edit_before_it_reaches_disk(server: JupyterServer) -> None:
    path = f"reads/{unique('live')}.ipynb"
    write_notebook(server.root / path, ["a = 1"])
    async with Collaborator.join(server, path) as peer:
        notebook = YNotebook(peer.doc)
        await peer.wait_for(lambda: notebook.cell_number == 1)
        source = notebook.ycells[0]["source"]
        source.insert(len(source), "  # typed in the browser")
        async with mcp_client(server) as client:
            for _ in range(50):
                seen = await call(client, "get_notebook", path=path)
                if seen["cells"][0]["source"].endswith("# typed in the browser"):
                    break
        assert seen["cells"][0]["source"] == "a = 1  # typed in the browser"
        on_disk = nbformat.read(server.root / path, as_version=4)
        # The edit is live before any save has written it (the save debounce is still pending or just done).
        assert on_disk.cells[0].source in ("a = 1", "a = 1  # typed in the browser")
        connected = seen["collaboration"]["connected"]
        assert seen["collaboration"]["room_id"] == peer.room_id
        assert isinstance(connected, list)


async def test_get_notebook_shape_outputs_and_untrusted_mark(server: JupyterServer) -> None:
    path = f"reads/{unique('outputs')}.ipynb"
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                "show()",
                execution_count=3,
                outputs=[
                    nbformat.v4.new_output(
                        "display_data",
                        data={
                            "image/png": base64.b64encode(b"\x89PNG" + b"0" * 3000).decode(),
                            "text/plain": "<Figure>",
                        },
                    ),
                    nbformat.v4.new_output("error", ename="ValueError", evalue="bad", traceback=["line 1", "line 2"]),
                    nbformat.v4.new_output("stream", name="stdout", text="x" * 50_000),
                ],
            ),
            nbformat.v4.new_markdown_cell("**bold**"),
        ]
    )
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    (server.root / path).parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, server.root / path)
    async with mcp_client(server) as client:
        result = await call(client, "get_notebook", path=path, include_collaboration_state=False)
    assert "collaboration" not in result
    assert result["kernelspec"]["name"] == "python3"
    assert result["content_trust"]["untrusted_content"] is True
    code, markdown = result["cells"]
    assert code["id"] == nb.cells[0].id and markdown["id"] == nb.cells[1].id
    assert code["execution_count"] == 3
    display, error, stream = code["outputs"]
    # One text budget per cell (CollabMCP.output_max_chars, 20,000 by default) across all its outputs.
    assert stream["truncated"] is True and 19_900 < len(stream["text"]) < 20_000
    assert display["data"] == {"text/plain": "<Figure>"}
    assert display["binary"][0]["mime_type"] == "image/png" and display["binary"][0]["size"] > 4000
    assert (error["ename"], error["evalue"]) == ("ValueError", "bad")
    assert "outputs" not in markdown and markdown["source"] == "**bold**"
    assert len({code["version"], markdown["version"], result["version"]}) == 3


async def test_create_notebook_session_matches_jupyterlab_rest(server: JupyterServer) -> None:
    async with mcp_client(server) as client:
        session = await call(client, "create_notebook_session", path="notebooks/demo.ipynb")
    rest = server.api(
        "PUT", "api/collaboration/session/notebooks/demo.ipynb", json={"format": "json", "type": "notebook"}
    ).json()
    assert session["session_id"] == session["room_id"] == f"json:notebook:{rest['fileId']}"
    assert session["file_id"] == rest["fileId"]
    assert session["collaboration_session_id"] == rest["sessionId"]


async def test_unknown_and_wrong_kind_paths(server: JupyterServer) -> None:
    async with mcp_client(server) as client:
        missing = await call_error(client, "get_notebook", path="nope/missing.ipynb")
        not_notebook = await call_error(client, "get_notebook", path="notes.txt")
        session = await call_error(client, "create_notebook_session", path="nope/missing.ipynb")
        outside = await call_error(client, "get_notebook", path="../etc/passwd.ipynb")
        wrong_type = await call_error(client, "get_notebook", path=["notebooks/demo.ipynb"])
        missing_argument = await call_error(client, "get_notebook")
    assert missing["code"] == session["code"] == "not_found"
    assert (
        not_notebook["code"] == outside["code"] == wrong_type["code"] == missing_argument["code"] == "invalid_argument"
    )


async def test_list_notebooks_skips_checkpoints_and_hidden(server: JupyterServer) -> None:
    folder = unique("listing")
    write_notebook(server.root / folder / "a.ipynb", ["1"])
    write_notebook(server.root / folder / "sub" / "b.ipynb", ["2"])
    write_notebook(server.root / folder / ".ipynb_checkpoints" / "a-checkpoint.ipynb", ["1"])
    write_notebook(server.root / folder / ".hidden" / "c.ipynb", ["3"])
    write_notebook(server.root / folder / ".dot.ipynb", ["4"])
    (server.root / folder / "not-a-notebook.txt").write_text("x")
    async with mcp_client(server) as client:
        listed = await call(client, "list_notebooks", path=folder)
        single = await call(client, "list_notebooks", path=f"{folder}/a.ipynb")
    assert [entry["path"] for entry in listed["notebooks"]] == [f"{folder}/a.ipynb", f"{folder}/sub/b.ipynb"]
    assert listed["count"] == 2
    assert [entry["path"] for entry in single["notebooks"]] == [f"{folder}/a.ipynb"]


async def test_results_are_json_text_too(server: JupyterServer) -> None:
    # Clients that ignore structuredContent still get the same payload as text.
    async with mcp_client(server) as client:
        result = await client.call_tool("list_notebooks", {"path": "notebooks"})
    assert json.loads(result.content[0].text) == result.structured_content


async def test_hidden_files_are_refused_like_jupyter_refuses_them(server: JupyterServer) -> None:
    write_notebook(server.root / ".secret" / "keys.ipynb", ["token = 'x'"])
    (server.root / ".env").write_text("API_KEY=1\n")
    async with mcp_client(server) as client:
        notebook = await call_error(client, "get_notebook", path=".secret/keys.ipynb")
        text = await call_error(client, "get_document", path=".env")
        edit = await call_error(client, "insert_text", path=".env", text="x", position=0)
    assert notebook["code"] == text["code"] == edit["code"] == "invalid_argument"
    assert "hidden" in text["message"]
    assert (server.root / ".env").read_text() == "API_KEY=1\n"


async def test_the_language_is_known_before_any_kernel_ran(server: JupyterServer) -> None:
    def notebook(metadata: dict) -> str:
        path = f"reads/{unique('language')}.ipynb"
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")], metadata=metadata)
        (server.root / path).parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, server.root / path)
        return path

    cases = {
        notebook({"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}): "python",
        # Only the kernel's name: the installed kernelspec says which language it runs.
        notebook({"kernelspec": {"name": "python3", "display_name": "Python 3"}}): "python",
        notebook({"language_info": {"name": "julia"}, "kernelspec": {"name": "x", "display_name": "X"}}): "julia",
        notebook({}): None,
    }
    async with mcp_client(server) as client:
        for path, language in cases.items():
            result = await call(client, "get_notebook", path=path, include_collaboration_state=False)
            assert result["language"] == language, path
