"""The activity feed: one bounded record of what collaborators did, built from real events.

Entries come from MCP edits and executions (the agent peer's touch), from
broadcasts, from agent peers joining and leaving, and from
jupyter-collaboration's awareness events (websocket collaborators joining and
leaving rooms). The feed is bounded overall and per document, so one busy
document cannot push every other document's history out.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from traitlets import HasTraits, Int

from ..config_ranges import positive
from ..timestamps import utc_now

# Where an entry came from: who vouches for its fields.
SOURCE_MCP = "mcp"
SOURCE_BROADCAST = "broadcast"
SOURCE_COLLABORATION = "collaboration"


@dataclass
class ActivityEntry:
    activity_type: str
    user_id: str
    display_name: str
    is_agent: bool
    source: str
    document_path: str | None = None
    session_id: str | None = None
    description: str = ""
    metadata: dict[str, Any] | None = None
    time: str = field(default_factory=utc_now)
    id: int = 0

    def as_dict(self) -> dict[str, Any]:
        entry = {
            "id": self.id,
            "time": self.time,
            "activity_type": self.activity_type,
            "user_id": self.user_id,
            "display_name": self.display_name,
            "is_agent": self.is_agent,
            "source": self.source,
            "document_path": self.document_path,
            "session_id": self.session_id,
            "description": self.description,
        }
        if self.metadata:
            entry["metadata"] = self.metadata
        return entry


class ActivityFeed:
    def __init__(self, max_total: int = 1000, max_per_document: int = 200) -> None:
        if max_total < 1 or max_per_document < 1:
            raise ValueError("activity feed bounds must be positive")
        self.max_total = max_total
        self.max_per_document = max_per_document
        self._ids = itertools.count(1)
        self._entries: OrderedDict[int, ActivityEntry] = OrderedDict()
        self._by_document: dict[str, deque[int]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, entry: ActivityEntry) -> ActivityEntry:
        entry.id = next(self._ids)
        self._entries[entry.id] = entry
        if entry.document_path is not None:
            ids = self._by_document.setdefault(entry.document_path, deque())
            ids.append(entry.id)
            while len(ids) > self.max_per_document:
                self._entries.pop(ids.popleft(), None)
        while len(self._entries) > self.max_total:
            _, dropped = self._entries.popitem(last=False)
            self._forget_in_document(dropped)
        return entry

    def _forget_in_document(self, entry: ActivityEntry) -> None:
        if entry.document_path is None:
            return
        ids = self._by_document.get(entry.document_path)
        if not ids:
            return
        if ids[0] == entry.id:
            ids.popleft()
        if not ids:
            del self._by_document[entry.document_path]

    def recent(
        self, limit: int, can_read: Callable[[str], bool], document_path: str | None = None
    ) -> list[ActivityEntry]:
        """Newest first; entries about documents the caller may not read are left out."""
        if document_path is not None:
            if not can_read(document_path):
                return []
            ids = reversed(self._by_document.get(document_path, ()))
            candidates = (self._entries[i] for i in ids if i in self._entries)
        else:
            candidates = reversed(self._entries.values())
        chosen: list[ActivityEntry] = []
        for entry in candidates:
            if _visible(entry, can_read):
                chosen.append(entry)
                if len(chosen) >= limit:
                    break
        return chosen

    def last_activity_of(self, user_id: str, can_read: Callable[[str], bool]) -> str | None:
        for entry in reversed(self._entries.values()):
            if entry.user_id == user_id and _visible(entry, can_read):
                return entry.time
        return None


class ActivityConfig(HasTraits):
    """Bounds of the activity feed (CollabMCP inherits these)."""

    activity_max_entries = Int(
        1000, help="Most activity entries kept in memory overall (edits, executions, broadcasts, joins, leaves)."
    ).tag(config=True)
    activity_max_per_document = Int(
        200, help="Most activity entries kept per document, so one busy document cannot evict the others."
    ).tag(config=True)

    _activity_positive = positive("activity_max_entries", "activity_max_per_document")

    def make_activity_feed(self) -> ActivityFeed:
        return ActivityFeed(max_total=self.activity_max_entries, max_per_document=self.activity_max_per_document)


def _visible(entry: ActivityEntry, can_read: Callable[[str], bool]) -> bool:
    """Entries about no document are for everyone; a room whose document is unknown (a fork, a deleted
    file) may name something the caller may not read, so it is shown to nobody."""
    if entry.document_path is not None:
        return can_read(entry.document_path)
    return entry.session_id is None
