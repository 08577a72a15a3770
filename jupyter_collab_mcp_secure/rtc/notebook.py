"""Reading the shared notebook (a jupyter_ydoc YNotebook) by cell id."""

from __future__ import annotations

from typing import Any

from ..gateway.errors import NOT_FOUND, ToolFailure


def _integral(value: Any) -> Any:
    # Yjs stores numbers as floats; nbformat wants ints back.
    return int(value) if isinstance(value, float) and value.is_integer() else value


def cell_to_dict(ycell: Any) -> dict[str, Any]:
    cell = ycell.to_py() or {}
    cell.pop("execution_state", None)
    if "execution_count" in cell:
        cell["execution_count"] = _integral(cell["execution_count"])
    for output in cell.get("outputs") or []:
        if "execution_count" in output:
            output["execution_count"] = _integral(output["execution_count"])
    return cell


def find_cell(ynotebook: Any, cell_id: str) -> tuple[int, Any]:
    """Index and shared map of the cell with that nbformat id; indexes shift under collaborators, ids do not."""
    for index, ycell in enumerate(ynotebook.ycells):
        if ycell.get("id") == cell_id:
            return index, ycell
    raise ToolFailure(NOT_FOUND, f"no cell with id '{cell_id}'")


def notebook_metadata(ynotebook: Any) -> dict[str, Any]:
    # jupyter_ydoc keeps notebook metadata in its private `meta` map and offers no accessor for it alone.
    return (ynotebook._ymeta.to_py() or {}).get("metadata") or {}


def kernelspec(ynotebook: Any) -> dict[str, Any] | None:
    spec = notebook_metadata(ynotebook).get("kernelspec")
    return dict(spec) if isinstance(spec, dict) else None
