"""Loading a document's versions for a call: the store settled first, earlier paths' versions only for their readers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ..gateway.errors import UNAVAILABLE, ToolFailure
from .adapter import FILE, RTCAdapter
from .attribution import AttributionLog
from .history import DocumentHistory, history_unavailable_reason
from .moves import MoveLog
from .text_kinds import require_text
from .ystore import settled, store_class_in_use


class HistoryReader:
    def __init__(self, rtc: RTCAdapter, attribution: AttributionLog, moves: MoveLog, quiet_period: float) -> None:
        self.rtc = rtc
        self.attribution = attribution
        self.moves = moves
        self.quiet_period = quiet_period

    async def load(self, path: str, kind: str, can_read: Callable[[str], bool]) -> DocumentHistory:
        await self.rtc.require_file(path, kind)
        if kind == FILE:
            await require_text(self.rtc.contents, path)
        store_class = store_class_in_use(self.rtc.ydoc_extension)
        if store_class is None:
            raise ToolFailure(UNAVAILABLE, history_unavailable_reason())
        room_id, file_id = self.rtc.room_id_for(path, kind)
        room = self.rtc.live_room(room_id)
        if room is not None:
            await settled(room)
        # Edits recorded but not yet written would otherwise show as anonymous.
        await self.attribution.settled(file_id)
        history = await DocumentHistory(store_class, self.attribution, kind, file_id, self.quiet_period).load()
        # Content from before a move into this folder is shown only to those who could read it where it was.
        history.restrict(await asyncio.to_thread(self.moves.former_paths, path), can_read)
        return history
