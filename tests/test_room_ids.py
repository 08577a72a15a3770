"""The room codec: the ids jupyter-collaboration gives its rooms, through its own encode/decode helpers."""

from __future__ import annotations

from jupyter_server_ydoc.utils import decode_file_path

from jupyter_collab_mcp_secure.room_ids import (
    FILE,
    GLOBAL_AWARENESS_ROOM,
    NOTEBOOK,
    current_widget,
    document_of,
    document_room,
    file_id_of,
    path_of_current,
)


def test_document_rooms_are_upstreams_ids_and_parse_back() -> None:
    assert document_room(NOTEBOOK, "abc") == "json:notebook:abc"
    assert document_room(FILE, "f:1") == "text:file:f:1"
    # Upstream reads them back the same way when it opens the room.
    assert decode_file_path(document_room(FILE, "f:1")) == ("text", "file", "f:1")
    assert document_of("json:notebook:abc") == (NOTEBOOK, "abc")
    assert document_of("text:file:f:1") == (FILE, "f:1")


def test_other_rooms_name_no_document() -> None:
    assert document_of(GLOBAL_AWARENESS_ROOM) is None
    assert file_id_of(GLOBAL_AWARENESS_ROOM) is None
    assert document_of("json:file:abc") is None  # a format and type pair no document room has
    assert file_id_of("json:file:abc") == "abc"  # but it still names a file, as the policy must see
    assert document_of("") is None and file_id_of("a:b") is None


def test_the_focused_document_in_awareness() -> None:
    assert current_widget(NOTEBOOK, "a/b.ipynb") == "notebook:a/b.ipynb"
    assert current_widget(FILE, "c:d.py") == "editor:c:d.py"
    assert path_of_current("editor:c:d.py") == "c:d.py"
    assert path_of_current("launcher") is None
    assert path_of_current(None) is None and path_of_current(3) is None
