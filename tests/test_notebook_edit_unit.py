"""The editing primitives on a plain shared notebook (no server): minimal text edits, conversion, live outputs."""

from __future__ import annotations

import pytest
from jupyter_ydoc import YNotebook
from pycrdt import Doc, Text

from jupyter_collab_mcp_secure.rtc.diff import minimal_edits
from jupyter_collab_mcp_secure.rtc.notebook_edit import (
    LiveCellOutputs,
    converted_cell,
    new_cell,
)
from jupyter_collab_mcp_secure.rtc.text import Edit, apply_edits


def set_text(text: Text, new: str) -> bool:
    old = str(text)
    edits = minimal_edits(old, new)
    apply_edits(text, old, edits)
    return bool(edits)


def shared_text(value: str) -> tuple[Doc, Text]:
    doc = Doc()
    doc["t"] = text = Text(value)
    return doc, text


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("", "x = 1\n"),
        ("x = 1\n", ""),
        ("a\nb\nc\n", "a\nB\nc\nd\n"),
        ("print('héllo 😀')\n", "print('héllo 😀 wörld')\n"),
        ("same", "same"),
        ("one\ntwo", "zero\none\ntwo\nthree"),
    ],
)
def test_cell_source_edits_turn_old_into_new(old: str, new: str) -> None:
    _, text = shared_text(old)
    set_text(text, new)
    assert str(text) == new


def test_cell_source_edits_touch_only_what_changed() -> None:
    old = "import os\nx = 1\ny = 2\n"
    assert minimal_edits(old, "import os\nx = 10\ny = 2\n") == [Edit(15, 15, "0")]


@pytest.mark.parametrize("new", ["😀 at start", "a\nb😀\nc", "", "ünïcødé\n" * 3])
def test_set_text_handles_multibyte_characters(new: str) -> None:
    _, text = shared_text("a\nb\nc ü 😀")
    set_text(text, new)
    assert str(text) == new


def test_concurrent_edit_elsewhere_in_the_text_survives() -> None:
    """The agent's edit and a person's edit made at the same time on another line both stay."""
    original = "a = 1\nb = 2\nc = 3\n"
    server_doc, server_text = shared_text(original)
    person_doc = Doc()
    person_doc.apply_update(server_doc.get_update())
    person_text = person_doc.get("t", type=Text)
    before = person_doc.get_state()

    set_text(server_text, "a = 100\nb = 2\nc = 3\n")
    person_text.insert(len(b"a = 1\nb = 2\nc = 3"), "  # checked")

    server_doc.apply_update(person_doc.get_update(before))
    assert str(server_text) == "a = 100\nb = 2\nc = 3  # checked\n"


def test_set_text_reports_no_change() -> None:
    _, text = shared_text("same")
    assert set_text(text, "same") is False


def test_conversion_keeps_id_and_metadata_and_drops_outputs() -> None:
    code = {
        **new_cell("code", "1+1", metadata={"tags": ["x"]}),
        "outputs": [{"output_type": "stream"}],
        "execution_count": 3,
    }
    markdown = converted_cell(code, "markdown", "# Title")
    assert markdown == {"id": code["id"], "cell_type": "markdown", "source": "# Title", "metadata": {"tags": ["x"]}}
    back = converted_cell(markdown, "code", "2+2")
    assert back["outputs"] == [] and back["execution_count"] is None and back["id"] == code["id"]


def notebook_with(cell: dict) -> YNotebook:
    nb = YNotebook()
    nb.set({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    return nb


def message(kind: str, **content) -> dict:
    return {"header": {"msg_type": kind}, "parent_header": {}, "content": content}


def test_live_outputs_merge_streams_and_set_state() -> None:
    cell = new_cell("code", "print(1)")
    nb = notebook_with(
        {**cell, "outputs": [{"output_type": "stream", "name": "stdout", "text": "old"}], "execution_count": 9}
    )
    outputs = LiveCellOutputs(nb, cell["id"])
    outputs.begin()
    ycell = nb.ycells[0]
    assert ycell["execution_state"] == "running" and len(ycell["outputs"]) == 0 and ycell["execution_count"] is None
    outputs.handle(message("stream", name="stdout", text="a\n"))
    outputs.handle(message("stream", name="stdout", text="b\n"))
    outputs.handle(message("stream", name="stderr", text="warn\n"))
    outputs.handle(message("execute_result", data={"text/plain": "2"}, metadata={}, execution_count=4))
    outputs.finish(4)
    saved = nb.get()["cells"][0]
    assert saved["execution_count"] == 4
    assert [o["output_type"] for o in saved["outputs"]] == ["stream", "stream", "execute_result"]
    assert saved["outputs"][0]["text"] == "a\nb\n"
    assert ycell["execution_state"] == "idle"
    assert outputs.outputs[0]["text"] == "a\nb\n"


def test_live_outputs_clear_and_update_display() -> None:
    cell = new_cell("code", "")
    nb = notebook_with(cell)
    outputs = LiveCellOutputs(nb, cell["id"])
    outputs.begin()
    outputs.handle(message("display_data", data={"text/plain": "0%"}, metadata={}, transient={"display_id": "p"}))
    outputs.handle(
        message("update_display_data", data={"text/plain": "100%"}, metadata={}, transient={"display_id": "p"})
    )
    assert nb.get()["cells"][0]["outputs"][0]["data"] == {"text/plain": "100%"}
    outputs.handle(message("clear_output", wait=True))
    assert len(nb.get()["cells"][0]["outputs"]) == 1
    outputs.handle(message("stream", name="stdout", text="done"))
    assert [o.get("text") for o in nb.get()["cells"][0]["outputs"]] == ["done"]


def test_live_outputs_survive_the_cell_being_deleted() -> None:
    cell = new_cell("code", "")
    nb = notebook_with(cell)
    outputs = LiveCellOutputs(nb, cell["id"])
    outputs.begin()
    del nb.ycells[0]
    assert outputs.handle(message("stream", name="stdout", text="still collected"))
    outputs.finish(1)
    assert outputs.outputs[0]["text"] == "still collected"
