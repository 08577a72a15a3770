"""Listings through the server's ContentsManager: what Jupyter serves, in a stable order, capped.

The contents manager decides what exists and what it hides (`hide_globs`,
`allow_hidden`), so a listing shows no more than Jupyter's file browser would,
and it works the same with a contents manager that keeps no local files.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from jupyter_server.utils import ensure_async
from tornado.web import HTTPError

# Never entered: Jupyter's own checkpoints, and folders of generated files nobody edits.
SKIPPED_DIRS = frozenset({".ipynb_checkpoints", "__pycache__", "node_modules"})


@dataclass(frozen=True)
class Entry:
    path: str
    size: int | None  # bytes, as the contents manager reports them (None: it does not say)


def _listed_name(contents: Any, name: str) -> bool:
    # Dot names stay out even where `allow_hidden` serves them: listings never offered them, and a
    # contents manager of another kind may not filter `hide_globs` itself. A name is one path part.
    return bool(name) and not name.startswith(".") and "/" not in name and contents.should_list(name)


async def _listable(contents: Any, path: str) -> bool:
    """Whether a listing may start at `path`: nothing hidden or hidden by a glob on the way there."""
    if not all(_listed_name(contents, part) for part in PurePosixPath(path).parts):
        return False
    return contents.allow_hidden or not await ensure_async(contents.is_hidden(path))


def _links(root: Path, folder: str, names: list[str]) -> set[str]:
    """The names in `folder` that are symbolic links on the local file system (none for a non-local manager).

    Canonical paths resolve links, so a linked entry would be acted on at its target,
    which may lie outside the root or under a path the caller may not read.
    """
    base = root / folder
    return {name for name in names if os.path.islink(base / name)}


async def _children(contents: Any, root: Path, folder: str) -> tuple[list[Entry], list[str], int]:
    """(files to list, folders to enter, other names passed over) directly in `folder`, each sorted by name."""
    try:
        model = await ensure_async(contents.get(folder, content=True, type="directory"))
    except HTTPError:
        return [], [], 0  # gone meanwhile, or refused by the manager: like a walk, skip it
    items = sorted((item for item in model.get("content") or [] if item.get("name")), key=lambda item: item["name"])
    linked = await asyncio.to_thread(_links, root, folder, [item["name"] for item in items])
    files: list[Entry] = []
    folders: list[str] = []
    passed_over = 0
    for item in items:
        name = item["name"]
        path = f"{folder}/{name}" if folder else name
        if not _listed_name(contents, name) or name in linked:
            passed_over += 1
        elif item.get("type") == "directory":
            if name in SKIPPED_DIRS:
                passed_over += 1
            else:
                folders.append(path)
        else:
            files.append(Entry(path, item.get("size")))
    return files, folders, passed_over


async def walk(
    contents: Any, root: Path, under: str, accept: Callable[[str], bool], limit: int
) -> tuple[list[Entry], bool]:
    """Files below `under` (a folder or one file) that `accept` takes, depth first, sorted by name.

    Hidden and checkpoint folders are not entered; hidden files, names the manager
    hides (`hide_globs`) and links are not listed. It stops after examining
    `limit` names and says so: (entries, truncated).
    """
    if under and not await _listable(contents, under):
        return [], False
    if under and await ensure_async(contents.file_exists(under)):
        if not accept(under):
            return [], False
        try:
            model = await ensure_async(contents.get(under, content=False))
        except HTTPError:
            return [], False  # gone meanwhile
        return [Entry(under, model.get("size"))], False
    found: list[Entry] = []
    examined = 0
    pending = [under]
    while pending:
        files, folders, passed_over = await _children(contents, root, pending.pop())
        examined += len(folders) + passed_over
        for entry in files:
            examined += 1
            if examined > limit:
                return found, True
            if accept(entry.path):
                found.append(entry)
        if examined > limit:
            return found, True
        pending.extend(reversed(folders))
    return found, False
