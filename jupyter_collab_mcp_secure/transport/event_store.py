"""Resumability for one MCP session of one principal: the SSE events a client may have missed.

The SDK hands a single store to every session and its stream ids are JSON-RPC
request ids, which collide across sessions; one shared store would replay one
session's tool results to another session that names its event id. Each
session therefore gets its own store (see session_manager.py), and event ids
carry a random per-store prefix so an id from anywhere else matches nothing.

Bounded by count, bytes and age: old events go first, and an event larger than
the whole byte budget is not kept at all (its stream cannot be resumed, which
is better than an unbounded store).

Events are kept as their JSON text, not as message objects: a kept long read
would otherwise be hundreds of thousands of objects that every full garbage
collection walks (the long tail of a server streaming large results), and the
text is what sizing an event needs anyway. Only a replay parses it again.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mcp.server.streamable_http import (
    EventCallback,
    EventId,
    EventMessage,
    EventStore,
    StreamId,
)
from mcp_types import jsonrpc_message_adapter


@dataclass(frozen=True)
class EventStoreLimits:
    max_events: int = 1000
    max_bytes: int = 8 * 1024 * 1024
    max_age: float = 300.0

    def __post_init__(self) -> None:
        if self.max_events < 1 or self.max_bytes < 1 or self.max_age <= 0:
            raise ValueError("event store limits must be positive")


@dataclass
class _Event:
    stream_id: StreamId
    data: str | None  # the JSONRPCMessage as JSON, or None for the SDK's priming events
    stored_at: float


class SessionEventStore(EventStore):
    def __init__(
        self, limits: EventStoreLimits, owner: Any = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = limits
        # The principal whose session this is (the SDK's authorization context); kept for inspection.
        self.owner = owner
        self._clock = clock
        self._prefix = secrets.token_hex(8)
        self._next = 0
        self._events: OrderedDict[int, _Event] = OrderedDict()
        self._bytes = 0

    @property
    def bytes(self) -> int:
        return self._bytes

    @property
    def event_count(self) -> int:
        # Not __len__: the SDK tests `if self._event_store:`, and an empty store must still count as one.
        return len(self._events)

    async def store_event(self, stream_id: StreamId, message: Any) -> EventId:
        self._next += 1
        data = message.model_dump_json(by_alias=True, exclude_unset=True) if message is not None else None
        self._events[self._next] = _Event(stream_id, data, self._clock())
        self._bytes += _size(data)
        self._prune()
        return f"{self._prefix}-{self._next}"

    async def replay_events_after(self, last_event_id: EventId, send_callback: EventCallback) -> StreamId | None:
        self._prune()
        sequence = self._sequence_of(last_event_id)
        if sequence is None or sequence not in self._events:
            return None
        stream_id = self._events[sequence].stream_id
        for later, event in list(self._events.items()):
            if later <= sequence or event.stream_id != stream_id or event.data is None:
                continue
            message = jsonrpc_message_adapter.validate_json(event.data)
            await send_callback(EventMessage(message, f"{self._prefix}-{later}"))
        return stream_id

    def _sequence_of(self, event_id: str) -> int | None:
        prefix, _, number = event_id.rpartition("-")
        if prefix != self._prefix or not number.isdigit():
            return None
        return int(number)

    def _prune(self) -> None:
        oldest_kept = self._clock() - self.limits.max_age
        while self._events:
            first = next(iter(self._events.values()))
            over = (
                len(self._events) > self.limits.max_events
                or self._bytes > self.limits.max_bytes
                or first.stored_at < oldest_kept
            )
            if not over:
                return
            _, dropped = self._events.popitem(last=False)
            self._bytes -= _size(dropped.data)


def _size(data: str | None) -> int:
    return len(data) if data is not None else 0
