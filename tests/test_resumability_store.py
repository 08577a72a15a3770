"""The per-session event store and the session manager subclass that hands one to each session."""

from __future__ import annotations

import pytest
from mcp.server.streamable_http import EventMessage
from mcp_types import JSONRPCNotification, JSONRPCResponse

from jupyter_collab_mcp_secure.transport.event_store import (
    EventStoreLimits,
    SessionEventStore,
)
from jupyter_collab_mcp_secure.transport.session_manager import ScopedSessionManager


def response(request_id: int, text: str = "ok") -> JSONRPCResponse:
    return JSONRPCResponse(jsonrpc="2.0", id=request_id, result={"text": text})


def progress(n: int) -> JSONRPCNotification:
    return JSONRPCNotification(jsonrpc="2.0", method="notifications/progress", params={"progress": n})


async def replay(store: SessionEventStore, event_id: str) -> tuple[str | None, list[EventMessage]]:
    sent: list[EventMessage] = []

    async def collect(message: EventMessage) -> None:
        sent.append(message)

    stream = await store.replay_events_after(event_id, collect)
    return stream, sent


async def test_replays_the_rest_of_one_stream_only():
    store = SessionEventStore(EventStoreLimits())
    priming = await store.store_event("1", None)
    await store.store_event("1", progress(1))
    await store.store_event("2", response(2, "other request"))
    await store.store_event("1", response(1))
    stream, sent = await replay(store, priming)
    assert stream == "1"
    assert [m.message for m in sent] == [progress(1), response(1)]
    assert all(m.event_id for m in sent)


async def test_an_event_id_from_another_session_replays_nothing():
    mine, theirs = SessionEventStore(EventStoreLimits()), SessionEventStore(EventStoreLimits())
    their_priming = await theirs.store_event("1", None)
    await theirs.store_event("1", response(1, "their secret result"))
    await mine.store_event("1", None)
    await mine.store_event("1", response(1, "mine"))
    assert await replay(mine, their_priming) == (None, [])
    for forged in ["1", "", "x-1", their_priming.replace("-", "--"), mine._prefix + "-999", mine._prefix + "-abc"]:
        assert await replay(mine, forged) == (None, [])


async def test_bounded_by_count():
    store = SessionEventStore(EventStoreLimits(max_events=3))
    ids = [await store.store_event("1", progress(n)) for n in range(5)]
    assert store.event_count == 3
    assert await replay(store, ids[0]) == (None, [])
    _, sent = await replay(store, ids[2])
    assert [m.message for m in sent] == [progress(3), progress(4)]


async def test_bounded_by_bytes():
    size = len(response(1, "x" * 100).model_dump_json(by_alias=True, exclude_unset=True))
    store = SessionEventStore(EventStoreLimits(max_bytes=size * 2))
    for n in range(5):
        await store.store_event(str(n), response(n, "x" * 100))
    assert store.event_count == 2 and store.bytes <= size * 2
    await store.store_event("big", response(9, "y" * size * 3))
    assert store.bytes <= size * 2, "an event larger than the budget is not kept"


async def test_bounded_by_age():
    now = [1000.0]
    store = SessionEventStore(EventStoreLimits(max_age=60), clock=lambda: now[0])
    first = await store.store_event("1", None)
    await store.store_event("1", progress(1))
    now[0] += 61
    assert await replay(store, first) == (None, [])
    assert store.event_count == 0


def test_limits_must_be_positive():
    with pytest.raises(ValueError):
        EventStoreLimits(max_events=0)


class _FakeServer:
    pass


async def test_each_admitted_session_gets_its_own_store_and_its_end_is_reported_once():
    ended: list[str] = []

    async def on_end(session_id: str) -> None:
        ended.append(session_id)

    manager = ScopedSessionManager(_FakeServer(), event_store_limits=EventStoreLimits(), on_session_end=on_end)
    first, second = manager._admit_session(None), manager._admit_session(None)
    assert first._event_store is not second._event_store
    assert isinstance(first._event_store, SessionEventStore)
    assert first._event_store, "the SDK treats a falsy store as no store"
    assert manager.session_stores[first.mcp_session_id] is first._event_store
    await manager._discard_session(first.mcp_session_id, first)
    await manager._discard_session(first.mcp_session_id, first)
    assert ended == [first.mcp_session_id]
    assert first.mcp_session_id not in manager.session_stores


def test_a_shared_store_is_refused():
    with pytest.raises(ValueError):
        ScopedSessionManager(_FakeServer(), event_store=SessionEventStore(EventStoreLimits()))
