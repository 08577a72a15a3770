"""Writing to the shared notebook the way a collaborator does: cells JupyterLab understands, live outputs.

Everything here runs inside the caller's transaction on the live YNotebook, so a
call is one update for every peer.
"""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from pycrdt import Array, Map, Text

CELL_TYPES = ("code", "markdown")


def new_cell(
    cell_type: str,
    source: str,
    *,
    cell_id: str | None = None,
    metadata: dict[str, Any] | None = None,
    attachments: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An nbformat 4.5 cell as JupyterLab creates it: code cells with no outputs and no count yet."""
    cell: dict[str, Any] = {
        "id": cell_id or str(uuid4()),
        "cell_type": cell_type,
        "source": source,
        "metadata": metadata or {},
    }
    if cell_type == "code":
        cell["outputs"] = []
        cell["execution_count"] = None
    elif attachments:
        cell["attachments"] = attachments
    return cell


def converted_cell(cell: dict[str, Any], cell_type: str, source: str) -> dict[str, Any]:
    """The cell as `cell_type`, keeping its id, metadata and attachments; outputs do not survive the change.

    JupyterLab changes a cell's type by replacing the cell, and its views are
    built per type, so an in-place change of `cell_type` would not re-render.
    """
    attachments = cell.get("attachments") if cell_type != "code" else None
    return new_cell(cell_type, source, cell_id=cell.get("id"), metadata=cell.get("metadata"), attachments=attachments)


def yjs_numbers(value: Any) -> Any:
    """Yjs peers hold numbers as doubles; JupyterLab cannot serialize the big integers Python ints would become."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, dict):
        return {key: yjs_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [yjs_numbers(item) for item in value]
    return value


def output_from_message(msg: dict[str, Any]) -> dict[str, Any] | None:
    """The nbformat output an IOPub message adds to a cell, or None for messages that add none."""
    kind = msg["header"]["msg_type"]
    content = msg["content"]
    if kind == "stream":
        return {"output_type": "stream", "name": content["name"], "text": content["text"]}
    if kind in ("display_data", "execute_result"):
        output = {"output_type": kind, "data": content["data"], "metadata": content.get("metadata", {})}
        if kind == "execute_result":
            output["execution_count"] = content.get("execution_count")
        return output
    if kind == "error":
        return {
            "output_type": "error",
            "ename": content["ename"],
            "evalue": content["evalue"],
            "traceback": content["traceback"],
        }
    return None


class LiveCellOutputs:
    """The outputs of one running code cell, written into the shared cell as the kernel sends them.

    `outputs` mirrors what was produced, for the caller's result, even if a
    collaborator deletes the cell or clears its outputs meanwhile.
    """

    def __init__(self, notebook: Any, cell_id: str) -> None:
        self.notebook = notebook
        self.cell_id = cell_id
        self.outputs: list[dict[str, Any]] = []
        self._clear_on_next_output = False
        self._display_ids: dict[str, list[int]] = {}
        self._index_hint = 0

    def _ycell(self) -> Map | None:
        # Collaborators move and delete cells while code runs: re-find the cell by id, cheaply when it did not move.
        ycells = self.notebook.ycells
        if self._index_hint < len(ycells) and ycells[self._index_hint].get("id") == self.cell_id:
            return ycells[self._index_hint]
        for index, ycell in enumerate(ycells):
            if ycell.get("id") == self.cell_id:
                self._index_hint = index
                return ycell
        return None

    def _youtputs(self, ycell: Map) -> Array:
        youtputs = ycell.get("outputs")
        if not isinstance(youtputs, Array):
            youtputs = ycell["outputs"] = Array()
        return youtputs

    def begin(self) -> None:
        """What JupyterLab does when a cell starts: outputs cleared, no count, state running."""
        with self.notebook.ydoc.transaction():
            ycell = self._ycell()
            if ycell is not None:
                self._youtputs(ycell).clear()
                ycell["execution_count"] = None
                ycell["execution_state"] = "running"

    def finish(self, execution_count: int | None) -> None:
        with self.notebook.ydoc.transaction():
            ycell = self._ycell()
            if ycell is not None:
                ycell["execution_count"] = yjs_numbers(execution_count)
                ycell["execution_state"] = "idle"

    def handle(self, msg: dict[str, Any]) -> bool:
        """Apply one IOPub message of this execution; True when the outputs changed."""
        kind = msg["header"]["msg_type"]
        if kind == "clear_output":
            if msg["content"].get("wait"):
                self._clear_on_next_output = True
                return False
            self._clear()
            return True
        if kind == "update_display_data":
            return self._update_display(msg["content"])
        output = output_from_message(msg)
        if output is None:
            return False
        if self._clear_on_next_output:
            self._clear()
        self._append(output, (msg["content"].get("transient") or {}).get("display_id"))
        return True

    def _clear(self) -> None:
        self._clear_on_next_output = False
        self.outputs.clear()
        self._display_ids.clear()
        with self.notebook.ydoc.transaction():
            ycell = self._ycell()
            if ycell is not None:
                self._youtputs(ycell).clear()

    def _append(self, output: dict[str, Any], display_id: str | None) -> None:
        last = self.outputs[-1] if self.outputs else None
        merges = (
            output["output_type"] == "stream"
            and last is not None
            and last["output_type"] == "stream"
            and last["name"] == output["name"]
        )
        if merges:
            last["text"] += output["text"]
        else:
            if display_id:
                self._display_ids.setdefault(display_id, []).append(len(self.outputs))
            self.outputs.append(dict(output))
        with self.notebook.ydoc.transaction():
            ycell = self._ycell()
            if ycell is None:
                return
            youtputs = self._youtputs(ycell)
            ylast = youtputs[len(youtputs) - 1] if len(youtputs) else None
            # Stream text is a shared Text (as in JupyterLab): appending to it is how streams merge for every peer.
            if (
                merges
                and isinstance(ylast, Map)
                and ylast.get("output_type") == "stream"
                and ylast.get("name") == output["name"]
                and isinstance(ylast.get("text"), Text)
            ):
                ytext = ylast["text"]
                ytext.insert(len(ytext), output["text"])
            else:
                youtputs.append(_youtput(output))

    def _update_display(self, content: dict[str, Any]) -> bool:
        indexes = self._display_ids.get((content.get("transient") or {}).get("display_id"), [])
        for index in indexes:
            self.outputs[index]["data"] = content["data"]
            self.outputs[index]["metadata"] = content.get("metadata", {})
        if not indexes:
            return False
        with self.notebook.ydoc.transaction():
            ycell = self._ycell()
            youtputs = self._youtputs(ycell) if ycell is not None else None
            # Only when nobody cleared or changed the shared outputs meanwhile do the mirror's indexes hold there.
            if youtputs is not None and len(youtputs) == len(self.outputs):
                for index in indexes:
                    youtputs[index] = _youtput(self.outputs[index])
        return True


def _youtput(output: dict[str, Any]) -> Map:
    shared = yjs_numbers(output)
    if shared["output_type"] == "stream":
        shared["text"] = Text(shared["text"])
    return Map(shared)
