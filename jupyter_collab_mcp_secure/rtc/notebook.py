"""Reading the shared notebook (a jupyter_ydoc YNotebook) by cell id, and checking version tokens."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pycrdt import Map

from ..gateway.errors import CONFLICT, NOT_FOUND, ToolFailure
from .adapter import cell_version, version_of


def _integral(value: Any) -> Any:
    # Yjs stores numbers as floats; nbformat wants ints back.
    return int(value) if isinstance(value, float) and value.is_integer() else value


def cell_to_dict(ycell: Any) -> dict[str, Any]:
    return _normalized(ycell.to_py() or {})


def all_cells(ynotebook: Any) -> list[dict[str, Any]]:
    """Every cell as nbformat-like dicts; pycrdt serializes the whole array to JSON ~10x faster than to_py per cell."""
    return [_normalized(cell) for cell in json.loads(str(ynotebook.ycells))]


def _normalized(cell: dict[str, Any]) -> dict[str, Any]:
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
    # jupyter_ydoc offers no accessor for the metadata alone (get() serializes every cell): read the shared
    # document's `meta` root, part of the schema JupyterLab and jupyter_ydoc share, not a private attribute.
    return (ynotebook.ydoc.get("meta", type=Map).to_py() or {}).get("metadata") or {}


def kernelspec(ynotebook: Any) -> dict[str, Any] | None:
    spec = notebook_metadata(ynotebook).get("kernelspec")
    return dict(spec) if isinstance(spec, dict) else None


def notebook_language(ynotebook: Any, installed_language: Callable[[str], str | None]) -> str | None:
    """The notebook's language before any kernel ran: what the last kernel reported, else its kernelspec.

    `installed_language` names the language of an installed kernelspec, for
    notebooks whose metadata names the kernel only. None when nothing says.
    """
    metadata = notebook_metadata(ynotebook)
    spec = metadata.get("kernelspec") if isinstance(metadata.get("kernelspec"), dict) else {}
    info = metadata.get("language_info") if isinstance(metadata.get("language_info"), dict) else {}
    for candidate in (info.get("name"), spec.get("language")):
        if isinstance(candidate, str) and candidate:
            return candidate
    name = spec.get("name")
    return (installed_language(name) or None) if isinstance(name, str) and name else None


def cell_identity(ycell: Any) -> dict[str, Any]:
    """What a cell's version covers (its type and source), without converting its outputs."""
    return {"id": ycell.get("id"), "cell_type": ycell.get("cell_type"), "source": str(ycell.get("source", ""))}


def require_version(ynotebook: Any, cell: dict[str, Any] | None, expected_version: str | None) -> None:
    """Refuse a write based on a stale read: `expected_version` must be the document's version or the cell's."""
    if expected_version is None:
        return
    document_version = version_of(ynotebook.ydoc)
    current = {document_version}
    if cell is not None:
        current.add(cell_version(cell))
    if expected_version not in current:
        what = "the cell" if cell is not None else "the notebook"
        raise ToolFailure(
            CONFLICT,
            f"{what} changed since version {expected_version} was read; read it again (get_notebook) and retry",
            document_version=document_version,
            **({"cell_version": cell_version(cell)} if cell is not None else {}),
        )
