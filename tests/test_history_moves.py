"""History across a move: content from before a move shows only to those who could read it where it was."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from awareness_fixtures import jwt_config, token_for
from conftest import populate
from harness import JupyterServer, call, call_error, eventually, mcp_client, start_server


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    workdir = tmp_path_factory.mktemp("moves")
    populate(workdir / "root")
    (workdir / "root" / "private").mkdir()
    (workdir / "root" / "public").mkdir()
    running = start_server(workdir, config=jwt_config(workdir / "policy", ["p, alice, public/**, write, allow"]))
    yield running
    running.stop()


async def test_versions_from_before_a_move_need_read_where_the_document_was(shared_server: JupyterServer) -> None:
    (shared_server.root / "private" / "plan.txt").write_text("secret\n")
    async with mcp_client(shared_server) as owner:
        await call(owner, "update_document", path="private/plan.txt", content="secret v2\n")
        moved = shared_server.api("PATCH", "api/contents/private/plan.txt", json={"path": "public/plan.txt"})
        assert moved.status_code == 200, moved.text
        await call(owner, "update_document", path="public/plan.txt", content="public now\n")
        everything = (await call(owner, "get_document_history", path="public/plan.txt"))["versions"]
    assert len(everything) >= 3
    async with mcp_client(shared_server, token_for("alice", "helper")) as alice:
        history = await eventually(
            lambda: call(alice, "get_document_history", path="public/plan.txt"), lambda h: len(h["versions"]) == 1
        )
        seen = history["versions"]
        assert [version["id"] for version in seen] == [everything[0]["id"]]
        refused = await call_error(
            alice, "restore_document_version", path="public/plan.txt", version_id=everything[-1]["id"]
        )
        assert refused["code"] == "not_found"
        assert (await call(alice, "get_document", path="public/plan.txt"))["content"] == "public now\n"


def test_former_paths_follow_file_and_folder_moves_back(tmp_path) -> None:
    from jupyter_collab_mcp_secure.rtc.moves import MoveLog

    moves = MoveLog(tmp_path / "moves.sqlite")
    moves.record("secret/a.txt", "drafts/a.txt", 1.0)
    moves.record("drafts", "team/drafts", 2.0)
    moves.record("other/b.txt", "team/drafts/b.txt", 3.0)
    assert moves.former_paths("team/drafts/a.txt") == [(2.0, "drafts/a.txt"), (1.0, "secret/a.txt")]
    assert moves.former_paths("team/drafts-x/a.txt") == []
    assert (tmp_path / "moves.sqlite").stat().st_mode & 0o077 == 0
    moves.close()


def test_jwt_without_an_issuer_warns_at_startup(shared_server: JupyterServer) -> None:
    # This server's JWT configuration (tests/awareness_fixtures.py) sets no jwt_issuer.
    assert "JWT authentication without jwt_issuer" in shared_server.log_text()
