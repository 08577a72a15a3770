"""Grouping stored updates into versions, change summaries and content at a version (no server needed)."""

from __future__ import annotations

import sqlite3
import zlib
from pathlib import Path
from typing import Any

import pytest
from jupyter_ydoc import YNotebook
from pycrdt import Doc, Text

from jupyter_collab_mcp_secure.gateway.errors import ToolFailure
from jupyter_collab_mcp_secure.identity.principal import Principal
from jupyter_collab_mcp_secure.rtc.attribution import AttributionLog
from jupyter_collab_mcp_secure.rtc.history import DocumentHistory, Update, attribute, group_versions
from jupyter_collab_mcp_secure.rtc.ystore import CollabYStore, bound_store_class, store_key

AGENT = Principal(user="alice", auth="jwt", realm="test", agent="helper")
OTHER_AGENT = Principal(user="bob", auth="jwt", realm="test", agent="reviewer")


class FakeStore:
    """Rows as upstream's SQLiteYStore writes them (its schema and version), with timestamps we choose."""

    def __init__(self, database: Path, key: str) -> None:
        self.db = sqlite3.connect(database)
        self.db.execute(
            "CREATE TABLE yupdates (path TEXT NOT NULL, yupdate BLOB, metadata BLOB, timestamp REAL NOT NULL)"
        )
        self.db.execute("CREATE TABLE ycheckpoints (path TEXT NOT NULL, checkpoint BLOB NOT NULL, timestamp REAL)")
        self.db.execute(f"PRAGMA user_version = {CollabYStore.version}")
        self.key = key

    def add(self, update: bytes, timestamp: float) -> None:
        self.db.execute("INSERT INTO yupdates VALUES (?, ?, ?, ?)", (self.key, update, b"", timestamp))
        self.db.commit()


class Recorder:
    """A document whose every transaction lands in the fake store at the clock's time."""

    def __init__(self, store: FakeStore, doc: Doc) -> None:
        self.clock = 1_000_000.0
        self.doc = doc
        doc.observe(lambda event: store.add(event.update, self.clock))

    def at(self, timestamp: float) -> Recorder:
        self.clock = timestamp
        return self


@pytest.fixture
async def attribution(tmp_path: Path) -> AttributionLog:
    log = AttributionLog(tmp_path / "attribution.sqlite")
    yield log
    await log.close()


def text_history(tmp_path: Path) -> tuple[FakeStore, Recorder, Text]:
    store = FakeStore(tmp_path / "ystore.sqlite", store_key("file", "F1"))
    doc = Doc()
    text = doc.get("source", type=Text)
    return store, Recorder(store, doc), text


async def load(
    tmp_path: Path, attribution: AttributionLog, kind: str = "file", file_id: str = "F1", quiet: float = 3.0
) -> DocumentHistory:
    store_class = bound_store_class(tmp_path / "ystore.sqlite")
    return await DocumentHistory(store_class, attribution, kind, file_id, quiet).load()


async def test_versions_split_by_quiet_periods_and_authors(tmp_path: Path, attribution: AttributionLog) -> None:
    store, recorder, text = text_history(tmp_path)
    t0 = recorder.clock
    text += "hello"  # initial load, unattributed
    for offset, letter in enumerate("abc"):  # a person typing: one version
        recorder.at(t0 + 10 + offset * 0.2)
        text.insert(len(text), letter)
    await attribution.record(file_id="F1", started=t0 + 20, finished=t0 + 20.1, principal=AGENT, tool="insert_text")
    recorder.at(t0 + 20.05)
    text.insert(0, "😀 ")
    await attribution.record(file_id="F1", started=t0 + 20.2, finished=t0 + 20.3, principal=AGENT, tool="insert_text")
    recorder.at(t0 + 20.25)
    text.insert(0, "again ")
    recorder.at(t0 + 30)
    del text[0:6]  # a person again, after a pause

    history = await load(tmp_path, attribution)
    versions = history.newest(10)
    assert len(versions) == len(history.versions) == 5
    assert [v["author"] for v in versions] == [
        None,
        {"user": "alice", "agent": "helper"},
        {"user": "alice", "agent": "helper"},
        None,
        None,
    ]
    assert versions[3]["updates"] == 3
    assert versions[3]["changes"] == {"chars_added": 3, "chars_removed": 0}
    assert versions[2]["changes"] == {"chars_added": 2, "chars_removed": 0}
    assert versions[2]["tool"] == "insert_text"
    assert versions[0]["changes"] == {"chars_added": 0, "chars_removed": 6}
    assert history.newest(2) == versions[:2]
    assert history.content_at(history.find(versions[3]["id"])) == "helloabc"
    assert history.content_at(history.find(versions[1]["id"])) == "again 😀 helloabc"


async def test_version_ids_are_stable_as_history_grows(tmp_path: Path, attribution: AttributionLog) -> None:
    store, recorder, text = text_history(tmp_path)
    text += "one"
    recorder.at(recorder.clock + 100)
    text += " two"
    first = [v["id"] for v in (await load(tmp_path, attribution)).newest(10)]
    recorder.at(recorder.clock + 100)
    text += " three"
    second = [v["id"] for v in (await load(tmp_path, attribution)).newest(10)]
    assert second[1:] == first
    assert len(set(second)) == 3


async def test_unknown_version_is_not_found(tmp_path: Path, attribution: AttributionLog) -> None:
    store, recorder, text = text_history(tmp_path)
    text += "x"
    history = await load(tmp_path, attribution)
    with pytest.raises(ToolFailure) as failure:
        history.find("v0-deadbeef")
    assert failure.value.code == "not_found"


async def test_no_store_yet_means_no_versions(tmp_path: Path, attribution: AttributionLog) -> None:
    history = await load(tmp_path, attribution)
    assert history.newest(10) == []
    assert not (tmp_path / "ystore.sqlite").exists()  # reading history does not create the store


class CompressingStore(CollabYStore):
    """A store that compresses its updates, as pycrdt-store lets a deployment do."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.register_compression_callbacks(zlib.compress, zlib.decompress)


async def test_history_reads_through_the_store_so_compressed_updates_replay(
    tmp_path: Path, attribution: AttributionLog
) -> None:
    store_class = bound_store_class(tmp_path / "ystore.sqlite", CompressingStore)
    doc = Doc()
    text = doc.get("source", type=Text)
    updates: list[bytes] = []
    subscription = doc.observe(lambda event: updates.append(event.update))
    text += "hello"
    text += " world"
    doc.unobserve(subscription)
    async with store_class(path=store_key("file", "F1")) as store:
        for update in updates:
            await store.write(update)
    history = await DocumentHistory(store_class, attribution, "file", "F1", 3.0).load()
    assert [version["changes"] for version in history.newest(10)] == [{"chars_added": 11, "chars_removed": 0}]
    assert history.content_at(history.versions[-1]) == "hello world"


async def test_notebook_versions_count_cells(tmp_path: Path, attribution: AttributionLog) -> None:
    store = FakeStore(tmp_path / "ystore.sqlite", store_key("notebook", "N1"))
    doc = Doc()
    notebook = YNotebook(doc)
    recorder = Recorder(store, doc)
    notebook.set(
        {
            "cells": [
                {
                    "id": "a",
                    "cell_type": "code",
                    "source": "x = 1",
                    "metadata": {},
                    "outputs": [],
                    "execution_count": None,
                },
                {"id": "b", "cell_type": "markdown", "source": "# t", "metadata": {}},
            ],
            "metadata": {},
            "nbformat": 4,
            "nbformat_minor": 5,
        }
    )
    await attribution.record(
        file_id="N1",
        started=recorder.clock + 9,
        finished=recorder.clock + 11,
        principal=OTHER_AGENT,
        tool="insert_notebook_cell",
    )
    recorder.at(recorder.clock + 10)
    with doc.transaction():
        notebook.append_cell(
            {"id": "c", "cell_type": "code", "source": "y = 2", "metadata": {}, "outputs": [], "execution_count": None}
        )
        notebook.ycells[0]["source"].insert(0, "# first\n")
        del notebook.ycells[1]
    history = await load(tmp_path, attribution, kind="notebook", file_id="N1")
    newest, oldest = history.newest(10)
    assert newest["author"] == {"user": "bob", "agent": "reviewer"}
    assert newest["changes"] == {"cells_added": 1, "cells_removed": 1, "cells_changed": 1}
    assert oldest["changes"] == {"cells_added": 2, "cells_removed": 0, "cells_changed": 0}
    old = history.content_at(history.find(oldest["id"]))
    assert [cell["id"] for cell in old["cells"]] == ["a", "b"]


def test_every_edit_call_is_a_version_of_its_own() -> None:
    """10,000 quick updates alternating between two agents: one version each."""
    from jupyter_collab_mcp_secure.rtc.attribution import AttributedEdit as Edit

    updates = [Update(bytes([i % 256]), 1000.0 + i) for i in range(10_000)]
    edits = [
        Edit("F", 1000.0 + i - 0.1, 1000.0 + i + 0.1, "alice" if i % 2 else "bob", None, "insert_text")
        for i in range(10_000)
    ]
    versions = group_versions(updates, attribute(updates, edits), [True] * len(updates), quiet_period=3.0)
    assert len(versions) == 10_000
    assert versions[1].author.user == "alice"
