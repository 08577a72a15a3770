"""Document tools: text files in the live shared model, history and restore, forks and merge.

Positions and lengths count characters (Unicode code points); the shared text
counts UTF-8 bytes, and rtc/text.py converts. History, restore, fork and merge
also take notebooks (`.ipynb`); reading and editing text refuses them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import PurePosixPath
from typing import Any

from pycrdt import Text

from ..gateway.errors import CONFLICT, INVALID_ARGUMENT, ToolFailure
from ..rtc.adapter import FILE, NOTEBOOK, OpenDocument, version_of
from ..rtc.diff import edits_to
from ..rtc.history import (
    DocumentHistory,
    attributed,
    content_applier,
    recorded,
)
from ..rtc.text import (
    APPEND,
    Edit,
    apply_edits,
    checked_length,
    checked_position,
)
from ..rtc.text_kinds import ANY_TEXT, FILE_TYPES, kind_of, require_text, text_files
from .content import bounded_collaborators, call, listing, services, with_untrusted

MAX_HISTORY_LIMIT = 500


def _document_kind(path: str) -> str:
    """FILE or NOTEBOOK, for the tools that take both."""
    return NOTEBOOK if path.endswith(".ipynb") else FILE


async def _require_text(path: str) -> None:
    await require_text(services().rtc.contents, path)


def _check_file_type(file_type: str | None) -> None:
    if file_type is not None and file_type not in FILE_TYPES:
        raise ToolFailure(INVALID_ARGUMENT, f"unknown file_type '{file_type}'; one of: {', '.join(sorted(FILE_TYPES))}")


def _check_version(document: OpenDocument, expected_version: str | None) -> None:
    if expected_version is None:
        return
    current_version = version_of(document.doc.ydoc)
    if current_version != expected_version:
        raise ToolFailure(
            CONFLICT,
            f"'{document.path}' changed since version {expected_version}; read it again",
            current_version=current_version,
        )


def _collaboration_state(document: OpenDocument) -> dict[str, Any]:
    svc = services()
    return {
        **bounded_collaborators(svc.rtc.collaboration_state(document)),
        "forks": [
            {"fork_id": fork.id, "title": fork.title, "synchronize": fork.synchronize}
            for fork in svc.forks.forks_of(document.path)
        ],
    }


def _text_of(document: OpenDocument) -> Text:
    return document.doc.ydoc.get("source", type=Text)


@contextlib.asynccontextmanager
async def _open_text(path: str, fork_id: str | None) -> AsyncIterator[OpenDocument]:
    await _require_text(path)
    async with services().forks.open_target(path, FILE, fork_id) as document:
        yield document


# Reads the live text and returns (the text the edits apply to, the edits, where the cursor ends).
Plan = Callable[[Callable[[], str]], Awaitable[tuple[str, list[Edit], int]]]


def _at_positions(plan: Callable[[str], tuple[list[Edit], int]]) -> Plan:
    """A plan computed from the current text at once (edits at given positions)."""

    async def planned(read: Callable[[], str]) -> tuple[str, list[Edit], int]:
        content = read()
        edits, cursor = plan(content)
        return content, edits, cursor

    return planned


async def _write_text(
    tool: str, path: str, fork_id: str | None, expected_version: str | None, plan: Plan
) -> dict[str, Any]:
    """Apply the edits `plan` computes from the current text; the result carries length, version and cursor."""
    current = call()
    svc = services()
    async with _open_text(path, fork_id) as document:
        _check_version(document, expected_version)
        ytext = _text_of(document)
        # Planned before the attribution span opens: a large diff awaits a thread, and what
        # collaborators type meanwhile is theirs.
        content, edits, cursor = await plan(lambda: str(ytext))
        _check_version(document, expected_version)
        async with recorded(document, svc.attribution, current.principal, tool, fork_id):
            if edits:
                with document.doc.ydoc.transaction():
                    apply_edits(ytext, content, edits)
        length = len(content) + sum(len(edit.text) - (edit.end - edit.start) for edit in edits)
        version = version_of(document.doc.ydoc)
        if fork_id is None:
            await svc.peers.touch(current.principal, current.mcp_session_id, tool, document, index=cursor)
    result: dict[str, Any] = {"path": document.path, "length": length, "version": version, "changed": bool(edits)}
    if fork_id is not None:
        result["fork_id"] = fork_id
    return result


async def list_documents(path: str | None = None, file_type: str | None = None) -> dict[str, Any]:
    """List the text documents you may read under `path` (a folder or file; default: everything).

    `file_type` filters: 'file' = any text document, 'text' = plain text
    (.txt, .log and unknown extensions), 'markdown', or a kind: python, json,
    yaml, toml, ini, csv, r, julia, javascript, typescript, html, css, xml,
    shell, sql, latex, rst. Notebooks (use list_notebooks), binary files,
    hidden files and folders, names the server hides (its `hide_globs`) and
    checkpoints are skipped. Telling text from binary reads files of up to
    1 MiB, 64 MiB per listing; past that a file is listed when its extension
    names a text kind. Each entry tells
    whether a collaboration room is open and how many collaborators are in it (people and agents apart).
    A very large tree is examined only up to the server's limit: `truncated`
    then says so (narrow the listing with `path`).
    """
    _check_file_type(file_type)
    rtc = services().rtc

    def named_like(relative: str) -> bool:
        if relative.endswith(".ipynb"):
            return False
        return file_type in (None, ANY_TEXT) or kind_of(relative) == file_type

    found, truncated = await listing(path or "", named_like)
    # Read only what the caller may read, after the walk: sniffing reads whole files.
    verdicts = await text_files(rtc.contents, [(entry.path, entry.size) for entry in found])
    documents = []
    for entry, is_text in zip(found, verdicts, strict=True):
        if not is_text:
            continue
        room = rtc.live_room_of(entry.path, FILE)
        documents.append(
            {
                "path": entry.path,
                "name": PurePosixPath(entry.path).name,
                "file_type": kind_of(entry.path),
                "size_bytes": entry.size,
                "collaborating": room is not None,
                **rtc.presence_counts(room),
            }
        )
    return with_untrusted({"documents": documents, "count": len(documents), "truncated": truncated})


async def get_document(
    path: str, include_collaboration_state: bool = True, fork_id: str | None = None, offset: int = 0
) -> dict[str, Any]:
    """Read a text document from its live shared model, including collaborators' unsaved edits.

    `length` counts characters (Unicode code points), as positions do in the
    edit tools. A long document comes in parts: `content` starts at `offset`
    and holds at most the server's read limit; `truncated` says more follows
    (call again with the next `offset`). `version` can be passed back as
    `expected_version` to the edit tools, which then refuse with `conflict` if
    someone changed the document since. With `fork_id` (from fork_document),
    read that fork of the document instead. Notebooks: use get_notebook.
    """
    async with _open_text(path, fork_id) as document:
        content = str(_text_of(document))
        if isinstance(offset, bool) or not 0 <= offset <= len(content):
            raise ToolFailure(INVALID_ARGUMENT, f"offset must be between 0 and {len(content)}, not {offset}")
        part = content[offset : offset + services().limits.document_read_max_chars]
        result: dict[str, Any] = {
            "path": document.path,
            "file_type": kind_of(document.path),
            "content": part,
            "offset": offset,
            "truncated": offset + len(part) < len(content),
            "length": len(content),
            "version": version_of(document.doc.ydoc),
        }
        if fork_id is not None:
            result["fork_id"] = fork_id
        if include_collaboration_state:
            result["collaboration"] = _collaboration_state(document)
    return with_untrusted(result)


async def create_document_session(path: str, file_type: str | None = None) -> dict[str, Any]:
    """Open (or join) the collaboration session of a text document, as JupyterLab does when it opens one.

    `session_id` is the collaboration room id (`text:file:<file_id>`), used by
    join_session, leave_session and get_active_sessions. `file_type` is
    detected from the name; if given it must be one list_documents knows.
    """
    _check_file_type(file_type)
    async with _open_text(path, None) as document:
        state = _collaboration_state(document)
    return with_untrusted(
        {
            "path": document.path,
            "session_id": document.room_id,
            "format": "text",
            "type": FILE,
            "file_type": kind_of(document.path),
            **state,
        }
    )


async def update_document(
    path: str,
    content: str,
    position: int | None = None,
    length: int | None = None,
    expected_version: str | None = None,
    fork_id: str | None = None,
) -> dict[str, Any]:
    """Change a text document.

    Without `position`: the document becomes `content`, applied as the
    smallest set of edits, so what collaborators change elsewhere meanwhile
    survives. With `position` (characters, 0-based; -1 = the end): `content`
    replaces `length` characters there (default 0: an insert). Returns the new
    `length` (characters) and `version`; `expected_version` refuses with
    `conflict` if the document changed since you read it. `fork_id` edits that
    fork instead.
    """
    if position is None and length is not None:
        raise ToolFailure(INVALID_ARGUMENT, "'length' needs a 'position'")

    async def whole(read: Callable[[], str]) -> tuple[str, list[Edit], int]:
        current, edits = await edits_to(read, content)
        return current, edits, (edits[-1].start + len(edits[-1].text)) if edits else 0

    def at_position(current: str) -> tuple[list[Edit], int]:
        start = checked_position(current, position)
        replaced = checked_length(current, start, length or 0)
        if position == APPEND and replaced:
            raise ToolFailure(INVALID_ARGUMENT, "position -1 appends; it replaces nothing")
        return [Edit(start, start + replaced, content)], start + len(content)

    plan = whole if position is None else _at_positions(at_position)
    return await _write_text("update_document", path, fork_id, expected_version, plan)


async def insert_text(
    path: str, text: str, position: int, expected_version: str | None = None, fork_id: str | None = None
) -> dict[str, Any]:
    """Insert `text` at `position` (characters, 0-based; -1 = the end) of a text document.

    Returns the new `length` (characters) and `version`. Out of range:
    `invalid_argument`. `expected_version` refuses with `conflict` if the
    document changed since you read it; `fork_id` edits that fork instead.
    """

    def plan(current: str) -> tuple[list[Edit], int]:
        start = checked_position(current, position)
        return [Edit(start, start, text)], start + len(text)

    return await _write_text("insert_text", path, fork_id, expected_version, _at_positions(plan))


async def delete_text(
    path: str, position: int, length: int, expected_version: str | None = None, fork_id: str | None = None
) -> dict[str, Any]:
    """Delete `length` characters from `position` (characters, 0-based) of a text document.

    Returns the new `length` and `version`. Out of range: `invalid_argument`.
    `expected_version` refuses with `conflict` if the document changed since
    you read it; `fork_id` edits that fork instead.
    """

    def plan(current: str) -> tuple[list[Edit], int]:
        start = checked_position(current, position, allow_append=False)
        removed = checked_length(current, start, length)
        return ([Edit(start, start + removed, "")] if removed else []), start

    return await _write_text("delete_text", path, fork_id, expected_version, _at_positions(plan))


async def _history(path: str, kind: str) -> DocumentHistory:
    return await services().history.load(path, kind, call().can_read)


async def get_document_history(path: str, limit: int = 10) -> dict[str, Any]:
    """List the versions of a text document or notebook, newest first.

    A version is a run of changes by one author: each MCP edit call is one,
    and people's edits are grouped until a pause. Each has a stable `id` (for
    restore_document_version), its `timestamp`, its `author` where known
    (MCP edits carry their user and agent; null: a collaborator in
    JupyterLab or a reload from disk) and what it changed: characters added
    and removed, or for notebooks cells added, removed and changed.
    """
    if not 1 <= limit <= MAX_HISTORY_LIMIT:
        raise ToolFailure(INVALID_ARGUMENT, f"limit must be between 1 and {MAX_HISTORY_LIMIT}")
    kind = _document_kind(path)
    history = await _history(path, kind)
    return {
        "path": path,
        "kind": kind,
        # Replaying and diffing versions is CPU work: other calls are served meanwhile.
        "versions": await asyncio.to_thread(history.newest, limit),
        "total_versions": len(history.versions),
    }


async def restore_document_version(path: str, version_id: str, expected_version: str | None = None) -> dict[str, Any]:
    """Bring a text document or notebook back to a version from get_document_history.

    The old content is applied to the live document as a new edit: people
    connected see it at once, it is saved, and it becomes a version itself,
    so a later restore can undo it. Unknown `version_id`: `not_found`.
    """
    current = call()
    svc = services()
    kind = _document_kind(path)
    history = await _history(path, kind)
    content = await asyncio.to_thread(history.content_at, history.find(version_id))
    async with svc.rtc.open(path, kind) as document:
        _check_version(document, expected_version)
        apply = await content_applier(document, content)
        async with attributed(document, svc.attribution, current.principal, "restore_document_version"):
            changed = apply()
        if changed:
            await svc.rtc.save_now(document)
        version = version_of(document.doc.ydoc)
        await svc.peers.touch(current.principal, current.mcp_session_id, current.tool, document)
    return {"path": path, "kind": kind, "restored_version": version_id, "changed": changed, "version": version}


async def fork_document(
    path: str, title: str | None = None, description: str | None = None, synchronize: bool = False
) -> dict[str, Any]:
    """Fork a text document or notebook: a private copy of the live document to work on, merged back later.

    The fork is listed by jupyter-collaboration's fork API (so JupyterLab
    sees it) with its title and description. Read and edit it by passing the
    returned `fork_id` with `path` to get_document, update_document,
    insert_text and delete_text. `synchronize=true` keeps pulling changes
    made to the original into the fork. merge_document_fork applies it;
    forks never merged are dropped after a while.
    """
    current = call()
    kind = _document_kind(path)
    if kind == FILE:
        await _require_text(path)
    fork = await services().forks.create(
        path,
        kind,
        title=title or "",
        description=description or "",
        synchronize=synchronize,
        created_by=current.principal.user,
    )
    return {**fork.describe(), "expires_in_seconds": services().forks.ttl}


async def merge_document_fork(path: str, fork_id: str, discard: bool = False) -> dict[str, Any]:
    """Merge a fork (from fork_document) into the document it was made from, and close the fork.

    The merge is a CRDT merge: changes made to the original since the fork
    and changes made in the fork both survive. A fork of another document is
    refused. `discard=true` closes the fork without merging.
    """
    current = call()
    svc = services()
    fork = svc.forks.fork_of(fork_id, path)
    if discard:
        await svc.forks.end(fork_id, by=current.principal.user)
        return {"path": path, "fork_id": fork_id, "merged": False, "closed": True}
    async with svc.rtc.open(path, fork.root.kind) as root:
        async with attributed(root, svc.attribution, current.principal, "merge_document_fork"):
            svc.forks.merge_into(fork, root)
        await svc.forks.end(fork_id, by=current.principal.user)
        await svc.rtc.save_now(root)
        version = version_of(root.doc.ydoc)
        await svc.peers.touch(current.principal, current.mcp_session_id, current.tool, root)
    return {"path": path, "fork_id": fork_id, "merged": True, "closed": True, "version": version}
