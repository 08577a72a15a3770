"""Path canonicalization: every path is relative, POSIX, inside the root, before any policy sees it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from jupyter_collab_mcp_secure.gateway.errors import ToolFailure
from jupyter_collab_mcp_secure.gateway.paths import canonicalize


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = (tmp_path / "root").resolve()
    (root / "notebooks" / "alice").mkdir(parents=True)
    (root / "notebooks" / "alice" / "a.ipynb").write_text("{}")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_text("s")
    os.symlink(tmp_path / "outside", root / "escape")
    os.symlink(root / "notebooks" / "alice", root / "alias")
    return root


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("notebooks/alice/a.ipynb", "notebooks/alice/a.ipynb"),
        ("./notebooks//alice/./a.ipynb", "notebooks/alice/a.ipynb"),
        ("notebooks/alice/", "notebooks/alice"),
        ("", ""),
        (".", ""),
        ("notebooks/alice/new.ipynb", "notebooks/alice/new.ipynb"),
        # A link inside the root is checked as its target.
        ("alias/a.ipynb", "notebooks/alice/a.ipynb"),
    ],
)
def test_canonical_forms(root: Path, raw: str, canonical: str) -> None:
    assert canonicalize(raw, root) == canonical


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("../x", "'..'"),
        ("notebooks/../../x", "'..'"),
        ("notebooks/alice/..", "'..'"),
        ("/etc/passwd", "relative"),
        ("~/x", "relative"),
        ("C:/x", "relative"),
        ("notebooks\\alice\\a.ipynb", "separator"),
        ("a\x00b", "NUL"),
        ("escape/secret.txt", "outside"),
        ("escape", "outside"),
        ("x" * 5000, "longer"),
        (42, "string"),
        (None, "string"),
        (["a"], "string"),
    ],
)
def test_refused(root: Path, raw: object, reason: str) -> None:
    with pytest.raises(ToolFailure) as refused:
        canonicalize(raw, root)
    assert refused.value.code == "invalid_argument"
    assert reason in refused.value.message


async def test_the_resolve_stage_hands_tools_the_canonical_path(root: Path) -> None:
    """The raw argument is replaced in the arguments dict itself: the tool never sees another form."""
    from jupyter_collab_mcp_secure.gateway.context import CallContext
    from jupyter_collab_mcp_secure.gateway.stages.resolve import ResolveStage
    from jupyter_collab_mcp_secure.identity.principal import Principal

    async def no_document(value: str) -> str:
        raise AssertionError("not an indirect argument")

    stage = ResolveStage(root, {"session_id": no_document, "fork_id": no_document})
    arguments = {"path": "./alias//a.ipynb", "cell_id": "c1", "content": "x"}
    call = CallContext(
        principal=Principal(user="alice", auth="jupyter", realm="jupyter"),
        tool="update_notebook_cell",
        arguments=arguments,
        request_id="r",
    )
    seen = {}

    async def tool(reached: CallContext) -> None:
        seen.update(reached.arguments)

    await stage(call, tool)
    assert arguments["path"] == seen["path"] == "notebooks/alice/a.ipynb"
    assert call.paths == ("notebooks/alice/a.ipynb",)


async def test_a_tool_acts_on_the_canonical_path_and_the_audit_shows_it(server) -> None:
    from harness import audit_records, call, mcp_client, write_notebook

    write_notebook(server.root / "canonical" / "real" / "n.ipynb", ["a = 1"])
    alias = server.root / "canonical" / "alias"
    if not alias.is_symlink():
        os.symlink(server.root / "canonical" / "real", alias)
    async with mcp_client(server) as client:
        read = await call(client, "get_notebook", path="./canonical//alias/n.ipynb", include_collaboration_state=False)
        cell_id = read["cells"][0]["id"]
        edited = await call(
            client, "update_notebook_cell", path="canonical/alias/./n.ipynb", cell_id=cell_id, content="a = 2"
        )
    assert read["path"] == edited["path"] == "canonical/real/n.ipynb"
    records = await audit_records(
        server, lambda r: r.get("tool") == "update_notebook_cell" and r.get("paths") == ["canonical/real/n.ipynb"], 1
    )
    assert records and records[0]["outcome"] == "ok"


@pytest.mark.parametrize(
    "raw",
    ["x" * 10_000, "a" * 300 + ".txt", "abcdefgh/" * 450 + "f.txt", "loop/x.txt"],
    ids=["10k-chars", "long-name", "deep-past-path-max", "link-loop"],
)
def test_paths_the_file_system_cannot_take_are_invalid_arguments(root: Path, raw: str) -> None:
    os.symlink(root / "loop", root / "loop")
    with pytest.raises(ToolFailure) as refused:
        canonicalize(raw, root)
    assert refused.value.code == "invalid_argument"


async def test_get_document_refuses_a_path_too_long_for_the_file_system(server) -> None:
    from harness import call_error, mcp_client

    async with mcp_client(server) as client:
        for raw in ("x" * 10_000, "a" * 300 + ".txt", "abcdefgh/" * 450 + "f.txt"):
            assert (await call_error(client, "get_document", path=raw))["code"] == "invalid_argument"
    assert "File name too long" not in server.log_text()
