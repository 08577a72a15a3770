"""The extension's SQLite state (attribution, moves) is read and written on worker threads, never on the event loop."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

from jupyter_server.services.contents.manager import ContentsManager

from jupyter_collab_mcp_secure.identity.principal import Principal
from jupyter_collab_mcp_secure.rtc.attribution import AttributionLog
from jupyter_collab_mcp_secure.rtc.moves import MoveLog


class ThreadSpy:
    """Stands in for a sqlite3 connection and notes the thread of every statement."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection
        self.threads: list[int] = []

    def execute(self, *args: Any) -> sqlite3.Cursor:
        self.threads.append(threading.get_ident())
        return self.connection.execute(*args)

    def close(self) -> None:
        self.threads.append(threading.get_ident())
        self.connection.close()


async def test_attribution_records_and_reads_on_worker_threads(tmp_path: Path) -> None:
    log = AttributionLog(tmp_path / "attribution.sqlite")
    spy = ThreadSpy(log._db)
    log._db = spy  # type: ignore[assignment]
    principal = Principal(user="alice", auth="jwt", realm="r")
    await log.record(file_id="f1", started=1.0, finished=2.0, principal=principal, tool="insert_text")
    edits = await log.edits("f1")
    await log.close()
    assert [(edit.user, edit.tool) for edit in edits] == [("alice", "insert_text")]
    assert len(spy.threads) == 3 and threading.get_ident() not in spy.threads


async def test_a_reported_move_is_written_on_a_worker_thread(tmp_path: Path) -> None:
    moves = MoveLog(tmp_path / "moves.sqlite")
    spy = ThreadSpy(moves._db)
    moves._db = spy  # type: ignore[assignment]
    event = {"action": "rename", "path": "b/x.txt", "source_path": "a/x.txt"}
    await moves._on_event(None, ContentsManager.event_schema_id, event)
    assert spy.threads and threading.get_ident() not in spy.threads
    assert [path for _, path in moves.former_paths("b/x.txt")] == ["a/x.txt"]
    moves.close()
