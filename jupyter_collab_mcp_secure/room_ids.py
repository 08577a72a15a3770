"""Room ids jupyter-collaboration gives its rooms, built and parsed here only, with upstream's own codec.

A document room is `<format>:<type>:<file id>` (`json:notebook:<id>`, `text:file:<id>`), encoded and
decoded by `jupyter_server_ydoc.utils`. JupyterLab's awareness also names the focused document as
`<widget>:<path>` (`notebook:a.ipynb`, `editor:a.py`): not a room id, but parsed here for the same reason.
"""

from __future__ import annotations

from jupyter_server_ydoc.utils import decode_file_path, encode_file_path

# The room every JupyterLab joins for presence; it holds no document.
GLOBAL_AWARENESS_ROOM = "JupyterLab:globalAwareness"

# The two kinds of documents the tools edit, as jupyter-collaboration names their content types.
NOTEBOOK = "notebook"
FILE = "file"
_FORMATS = {NOTEBOOK: "json", FILE: "text"}
_KINDS = {(form, kind): kind for kind, form in _FORMATS.items()}
# What JupyterLab's shell calls the widget showing each kind.
_WIDGETS = {NOTEBOOK: "notebook", FILE: "editor"}


def document_room(kind: str, file_id: str) -> str:
    """The room of a notebook or text file."""
    return encode_file_path(_FORMATS[kind], kind, file_id)


def file_id_of(room: str) -> str | None:
    """The file id of any `format:type:file_id` room id; None for other rooms (the global one)."""
    try:
        _, _, file_id = decode_file_path(room)
    except ValueError:
        return None
    return file_id


def document_of(room: str) -> tuple[str, str] | None:
    """(kind, file id) of a notebook or text file room; None for any other room."""
    try:
        form, kind, file_id = decode_file_path(room)
    except ValueError:
        return None
    known = _KINDS.get((form, kind))
    return None if known is None else (known, file_id)


def current_widget(kind: str, path: str) -> str:
    """How JupyterLab's global awareness names the document a user has in focus."""
    return f"{_WIDGETS[kind]}:{path}"


def path_of_current(current: object) -> str | None:
    """The path in a `current` awareness field (`<widget>:<path>`); None if it names none."""
    if not isinstance(current, str) or ":" not in current:
        return None
    return current.split(":", 1)[1]
