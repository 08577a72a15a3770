"""Document history from the collaboration YStore's timestamped updates and the edit attribution log.

A version is a run of updates by one author: every MCP edit call is a version
of its own (its attribution record spans exactly its updates), and updates
nobody claimed (people in JupyterLab, reloads from disk) are grouped until a
quiet period separates them. A version id is derived from its first update,
so it stays the same as history grows and across restarts.

Listing replays every update once into a fresh document (linear in the number
of updates) and reads the content only at the boundaries of the versions it
returns, so its cost is O(updates + limit x document size), never quadratic.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import hashlib
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from jupyter_ydoc import YNotebook
from pycrdt import Array, Doc, Map, Text
from pycrdt.store import YDocNotFound
from traitlets import Float, HasTraits

from ..config_ranges import positive
from ..gateway.errors import NOT_FOUND, ToolFailure
from ..identity.principal import Principal
from ..timestamps import rfc3339
from .adapter import FILE, NOTEBOOK, OpenDocument
from .attribution import AttributedEdit, AttributionLog
from .diff import change_counts, edits_to
from .text import apply_edits
from .ystore import CollabYStore, StoredSpan, store_key

# Attribution records written without waiting for the store (not through
# `attributed`) end slightly before their updates reach the YStore.
ATTRIBUTION_GRACE = 0.5
STORE_WRITE_TIMEOUT = 5.0


class HistoryConfig(HasTraits):
    """How get_document_history cuts collaborators' edits into versions (CollabMCP inherits this)."""

    history_quiet_period = Float(
        3.0,
        help=(
            "Seconds without changes that separate two versions of collaborators' edits in "
            "get_document_history (every MCP edit call is a version of its own)."
        ),
    ).tag(config=True)

    _history_positive = positive("history_quiet_period")


@dataclass(frozen=True)
class Update:
    data: bytes
    timestamp: float


@dataclass
class Version:
    id: str
    last: int  # index of its last update
    started: float
    ended: float
    author: AttributedEdit | None
    updates: int = 1  # content-changing updates in it


async def read_updates(store_class: type[CollabYStore], key: str) -> list[Update]:
    """Every stored update of one document, oldest first, read through the YStore's own `read()`.

    Not from its SQL table: the store decompresses what it compressed and shows what it squashed as it
    is, so history never misreads upstream's storage. A long history is thousands of rows to decode: the
    read runs in a worker thread on an event loop of its own, never holding the server's.
    """
    return await asyncio.to_thread(asyncio.run, _read_updates(store_class, key))


async def _read_updates(store_class: type[CollabYStore], key: str) -> list[Update]:
    if not store_class.database().exists():
        return []  # reading must not create the database
    updates = []
    async with store_class(path=key) as store:
        with contextlib.suppress(YDocNotFound):  # nothing stored for this document (or no tables yet)
            async for data, _metadata, timestamp in store.read():
                updates.append(Update(bytes(data), timestamp))
    # Timestamp order is the order of the edits: a squashed update is stamped with the time it stands for.
    updates.sort(key=lambda update: update.timestamp)
    return updates


def _author_of(
    timestamp: float, edits: Sequence[AttributedEdit], starts: Sequence[float], grace: float
) -> AttributedEdit | None:
    """The latest-started edit call whose span (extended by `grace`) holds `timestamp`."""
    index = bisect.bisect_right(starts, timestamp) - 1
    # Spans rarely overlap (concurrent agents); a short look back covers them.
    for candidate in range(max(index, -1), max(index - 8, -1), -1):
        edit = edits[candidate]
        if timestamp <= edit.finished + grace:
            return edit
    return None


def attribute(updates: Sequence[Update], edits: Sequence[AttributedEdit]) -> list[AttributedEdit | None]:
    """Each update's edit call, or None for updates nobody claimed.

    Spans recorded by `attributed` hold their updates exactly. A record made
    without waiting for the store holds none of its updates; only such a
    record claims the updates stored within ATTRIBUTION_GRACE after it, so a
    person typing right after an exact agent edit stays unattributed.
    """
    if not edits:
        return [None] * len(updates)
    starts = [edit.started for edit in edits]
    authors = [_author_of(update.timestamp, edits, starts, 0.0) for update in updates]
    exact = set(authors)
    late = [edit for edit in edits if edit not in exact]
    if late:
        late_starts = [edit.started for edit in late]
        for index, update in enumerate(updates):
            if authors[index] is None:
                authors[index] = _author_of(update.timestamp, late, late_starts, ATTRIBUTION_GRACE)
    return authors


def _version_id(update: Update) -> str:
    digest = hashlib.blake2b(update.data, digest_size=4).hexdigest()
    return f"v{int(update.timestamp * 1000)}-{digest}"


def content_changes(updates: Sequence[Update], kind: str) -> list[bool]:
    """Whether each update changed the content (saves only flip the `state` map's dirty flag)."""
    doc = Doc()
    changed = False

    def saw_change(_: Any) -> None:
        nonlocal changed
        changed = True

    # Subscriptions end when collected: keep them for the replay.
    if kind == NOTEBOOK:
        subscriptions = [
            doc.get("cells", type=Array).observe_deep(saw_change),
            doc.get("meta", type=Map).observe_deep(saw_change),
        ]
    else:
        subscriptions = [doc.get("source", type=Text).observe(saw_change)]
    flags = []
    for update in updates:
        changed = False
        doc.apply_update(update.data)
        flags.append(changed)
    del subscriptions
    return flags


def group_versions(
    updates: Sequence[Update],
    authors: Sequence[AttributedEdit | None],
    changes_content: Sequence[bool],
    quiet_period: float,
) -> list[Version]:
    """Versions oldest first; updates that change no content join the version before them."""
    versions: list[Version] = []
    for index, (update, author, changed) in enumerate(zip(updates, authors, changes_content)):
        current = versions[-1] if versions else None
        if not changed:
            if current is not None:
                current.last = index
            continue
        same_run = (
            current is not None
            and current.author == author
            and (author is not None or update.timestamp - current.ended <= quiet_period)
        )
        if same_run:
            assert current is not None
            current.last, current.ended, current.updates = index, update.timestamp, current.updates + 1
        else:
            versions.append(Version(_version_id(update), index, update.timestamp, update.timestamp, author))
    return versions


def _snapshot(doc: Doc, kind: str) -> Any:
    if kind == NOTEBOOK:
        return YNotebook(doc).get()
    return str(doc.get("source", type=Text))


def _cell_changes(old: dict[str, Any], new: dict[str, Any]) -> dict[str, int]:
    before = {cell.get("id"): cell for cell in old.get("cells", [])}
    after = {cell.get("id"): cell for cell in new.get("cells", [])}
    return {
        "cells_added": len(after.keys() - before.keys()),
        "cells_removed": len(before.keys() - after.keys()),
        "cells_changed": sum(1 for cell_id in before.keys() & after.keys() if before[cell_id] != after[cell_id]),
    }


def _changes(old: Any, new: Any, kind: str) -> dict[str, int]:
    if kind == NOTEBOOK:
        return _cell_changes(old or {"cells": []}, new)
    added, removed = change_counts(old or "", new)
    return {"chars_added": added, "chars_removed": removed}


def _describe(version: Version, changes: dict[str, int]) -> dict[str, Any]:
    author = version.author
    return {
        "id": version.id,
        "timestamp": rfc3339(version.started, millis=True),
        "ended": rfc3339(version.ended, millis=True),
        "author": None if author is None else {"user": author.user, "agent": author.agent},
        "tool": None if author is None else author.tool,
        "updates": version.updates,
        "changes": changes,
    }


class DocumentHistory:
    """The versions of one document (by file id, which survives renames)."""

    def __init__(
        self, store_class: type[CollabYStore], attribution: AttributionLog, kind: str, file_id: str, quiet_period: float
    ) -> None:
        self.store_class = store_class
        self.attribution = attribution
        self.kind = kind
        self.file_id = file_id
        self.quiet_period = quiet_period
        self.updates: list[Update] = []
        self.versions: list[Version] = []

    async def load(self) -> DocumentHistory:
        self.updates = await read_updates(self.store_class, store_key(self.kind, self.file_id))
        edits = await self.attribution.edits(self.file_id)
        changes_content = await asyncio.to_thread(content_changes, self.updates, self.kind)
        self.versions = group_versions(self.updates, attribute(self.updates, edits), changes_content, self.quiet_period)
        return self

    def restrict(self, former_paths: Sequence[tuple[float, str]], readable: Callable[[str], bool]) -> None:
        """Keep the versions made where the caller may read: before a move, the document had another path.

        `former_paths` are (moved at, path before) newest first (rtc/moves.py).
        """

        def path_then(version: Version) -> str | None:
            path = None
            for moved_at, before in former_paths:
                if version.started >= moved_at:
                    break
                path = before
            return path

        self.versions = [
            version for version in self.versions if (before := path_then(version)) is None or readable(before)
        ]

    def _replay(self, until: int, snapshot_at: set[int]) -> dict[int, Any]:
        """Apply updates 0..until to a fresh document; the content after each index in `snapshot_at`."""
        doc = Doc()
        snapshots = {}
        for index in range(until + 1):
            doc.apply_update(self.updates[index].data)
            if index in snapshot_at:
                snapshots[index] = _snapshot(doc, self.kind)
        return snapshots

    def newest(self, limit: int) -> list[dict[str, Any]]:
        """The `limit` newest versions, newest first, each with what it changed."""
        if not self.versions:
            return []
        shown = self.versions[-limit:]
        first_shown = len(self.versions) - len(shown)
        before_index = self.versions[first_shown - 1].last if first_shown > 0 else None
        boundaries = {version.last for version in shown}
        if before_index is not None:
            boundaries.add(before_index)
        snapshots = self._replay(shown[-1].last, boundaries)
        described = []
        previous = snapshots.get(before_index) if before_index is not None else None
        for version in shown:
            current = snapshots[version.last]
            described.append(_describe(version, _changes(previous, current, self.kind)))
            previous = current
        return list(reversed(described))

    def find(self, version_id: str) -> Version:
        for version in self.versions:
            if version.id == version_id:
                return version
        raise ToolFailure(NOT_FOUND, f"no version '{version_id}' in the history of this document")

    def content_at(self, version: Version) -> Any:
        return self._replay(version.last, {version.last})[version.last]


def history_unavailable_reason() -> str:
    return (
        "document history needs the collaboration YStore of this extension: set "
        f"c.YDocExtension.ystore_class = '{CollabYStore.__module__}.{CollabYStore.__qualname__}'"
    )


async def content_applier(document: OpenDocument, content: Any) -> Callable[[], bool]:
    """What makes the live document hold `content` by the smallest forward edit (False if it already did).

    The edits are planned here (a large text is diffed off the event loop) and
    applied by the returned function without awaiting, so the attribution span
    around it holds only this edit.
    """
    if document.kind == FILE:
        # The shared `source` root (the schema JupyterLab and jupyter_ydoc share) that YUnicode edits.
        ytext = document.doc.ydoc.get("source", type=Text)
        current, edits = await edits_to(lambda: str(ytext), content)

        def apply_text() -> bool:
            if edits:
                with document.doc.ydoc.transaction():
                    apply_edits(ytext, current, edits)
            return bool(edits)

        return apply_text

    def apply_notebook() -> bool:
        if document.doc.get() == content:
            return False
        # YNotebook.set keeps cells that did not change and edits changed ones in place.
        document.doc.set(content)
        return True

    return apply_notebook


@contextlib.asynccontextmanager
async def attributed(
    document: OpenDocument, attribution: AttributionLog, principal: Principal, tool: str
) -> AsyncIterator[None]:
    """Record the edits made in the block as `principal`'s, spanning exactly their stored updates.

    The room writes updates to the YStore asynchronously, in order; the record
    is made once they are written and spans the store's own timestamps for
    them, so neither a person's update stored just before nor one just after
    falls inside it.
    """
    started = time.time()
    store = getattr(document.room, "ystore", None)
    stored: list[asyncio.Future[StoredSpan]] = []
    updates = 0

    def on_update(event: Any) -> None:
        nonlocal updates
        updates += 1
        if isinstance(store, CollabYStore):
            # Registered synchronously, before the room's writer task can run.
            stored.append(store.expect(event.update))

    ydoc = document.doc.ydoc
    subscription = ydoc.observe(on_update)
    try:
        yield
    finally:
        ydoc.unobserve(subscription)
    if not updates:
        return
    # The call need not wait for the store's write: history waits for this record instead.
    recording = asyncio.get_running_loop().create_task(
        _record_when_stored(attribution, document.file_id, started, stored, principal, tool)
    )
    attribution.track(document.file_id, recording)


async def _record_when_stored(
    attribution: AttributionLog,
    file_id: str,
    started: float,
    stored: list[asyncio.Future[StoredSpan]],
    principal: Principal,
    tool: str,
) -> None:
    finished = None
    if stored:
        with contextlib.suppress(asyncio.TimeoutError):
            spans = await asyncio.wait_for(asyncio.gather(*stored), STORE_WRITE_TIMEOUT)
            started = min(span.earliest for span in spans)
            finished = max(span.latest for span in spans)
    await attribution.record(file_id=file_id, started=started, finished=finished, principal=principal, tool=tool)


def recorded(
    document: OpenDocument, attribution: AttributionLog, principal: Principal, tool: str, fork_id: str | None
) -> contextlib.AbstractAsyncContextManager[None]:
    """Attribution for an edit: forks keep no history of their own, their edits count when merged."""
    return contextlib.nullcontext() if fork_id is not None else attributed(document, attribution, principal, tool)
