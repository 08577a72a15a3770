"""Open RTC room connections under the server-wide Authorizer, decided for as long as they live.

A room websocket is admitted on read of its document, but access may end while it
is open: the policy is reloaded, or the document moves into a folder the principal
may not read. Each watched connection keeps the document's current path and is
re-decided

- on every message in either direction (a silent connection still receives the
  room's updates; those must stop too),
- at once for all connections when the policy reloads or a document or folder is
  renamed or deleted (the new path is taken from the rename itself).

A connection that lost read is closed (4403). One that keeps read but lacks write
keeps its awareness (presence, cursors); its document updates and save requests
are dropped and audited.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable
from typing import Any

from ..identity.principal import Principal
from ..registry import READ, WRITE
from .engine import PolicyEngine

CONTENTS_EVENTS = "https://events.jupyter.org/jupyter_server/contents_service/v1"
AUDIT_DROP_EVERY_SECONDS = 10.0
REVOKED = 4403

log = logging.getLogger(__name__)

# Yjs wire format (y-protocols): message type, then for sync messages a sub-type.
_SYNC, _AWARENESS = 0, 1
_SYNC_STEP1 = 0


class _Watch:
    __slots__ = ("closed", "dropped", "dropped_audited_at", "handler", "path", "principal")

    def __init__(self, handler: Any, principal: Principal, path: str) -> None:
        self.handler = handler
        self.principal = principal
        # None once the document moved somewhere no policy path can name: nobody keeps access.
        self.path: str | None = path
        self.closed = False
        self.dropped = 0
        self.dropped_audited_at: float | None = None


class RoomConnections:
    def __init__(self, engine: PolicyEngine, canonical: Callable[[str], str | None]) -> None:
        self.engine = engine
        # Raw contents path (from an event) -> canonical path, None if it has none.
        self.canonical = canonical
        self._watches: weakref.WeakKeyDictionary[Any, _Watch] = weakref.WeakKeyDictionary()
        engine.add_reload_listener(self.recheck_all)

    def watch(self, handler: Any, principal: Principal, path: str) -> None:
        """Guard this connection's traffic in both directions; re-decide it until it closes."""
        if handler in self._watches:
            self._watches[handler].path = path
            return
        watch = self._watches[handler] = _Watch(handler, principal, path)
        deliver, send = handler.on_message, handler.send

        async def on_message(message: bytes) -> Any:
            if not self._keeps_read(watch):
                return None
            if _is_read_only_safe(message) or self.engine.allowed(principal, WRITE, watch.path or ""):
                return await deliver(message)
            self._drop(watch)
            return None

        async def guarded_send(message: bytes) -> Any:
            if not self._keeps_read(watch):
                return None
            return await send(message)

        handler.on_message = on_message
        handler.send = guarded_send

    def _keeps_read(self, watch: _Watch) -> bool:
        if watch.closed:
            return False
        if watch.path is not None and self.engine.allowed(watch.principal, READ, watch.path):
            return True
        watch.closed = True
        log.info("closing a room connection of %s: read on %r ended", watch.principal.label, watch.path)
        _audit_revoked(self.engine, watch)
        try:
            watch.handler.close(REVOKED, "read access to this document ended")
        except Exception:  # noqa: BLE001 - the connection may be gone already
            log.debug("room connection already closed", exc_info=True)
        return False

    def recheck_all(self) -> None:
        for watch in list(self._watches.values()):
            self._keeps_read(watch)

    def moved(self, source: str, target: str | None) -> None:
        """A document or folder moved (target None: to no canonical path); re-decide what was open beneath it."""
        for watch in list(self._watches.values()):
            path = watch.path
            if path is not None and (path == source or path.startswith(source + "/")):
                watch.path = None if target is None else target + path[len(source) :]
                self._keeps_read(watch)

    async def on_contents_event(self, logger: Any, schema_id: str, data: dict[str, Any]) -> None:
        if data.get("action") != "rename":
            return
        source, target = self.canonical(data.get("source_path") or ""), self.canonical(data.get("path") or "")
        if source is not None:
            self.moved(source, target)

    def _drop(self, watch: _Watch) -> None:
        watch.dropped += 1
        now = time.monotonic()
        if watch.dropped_audited_at is None or now - watch.dropped_audited_at >= AUDIT_DROP_EVERY_SECONDS:
            _audit_drop(self.engine, watch.principal, watch.path or "", watch.dropped)
            watch.dropped_audited_at, watch.dropped = now, 0


def _is_read_only_safe(message: bytes) -> bool:
    """Awareness and the sync request (a state vector) change no document."""
    if not message:
        return False
    if message[0] == _AWARENESS:
        return True
    return message[0] == _SYNC and len(message) > 1 and message[1] == _SYNC_STEP1


def _record(engine: PolicyEngine, principal: Principal, fields: dict[str, Any]) -> None:
    trail = engine.audit_trail
    if trail is None:
        return
    try:
        trail.record(
            {
                "user": principal.user,
                "auth": principal.auth,
                "agent": principal.agent,
                "decision": "deny",
                "outcome": "denied",
                **fields,
            }
        )
    except Exception:  # noqa: BLE001 - a broken sink fails closed elsewhere; never here in a socket callback
        log.exception("could not audit a room connection decision")


def _audit_drop(engine: PolicyEngine, principal: Principal, path: str, count: int) -> None:
    log.warning("dropped %d RTC update(s) from %s on %r: no write access", count, principal.label, path)
    _record(engine, principal, {"event": "rtc_update_dropped", "action": WRITE, "paths": [path], "dropped": count})


def _audit_revoked(engine: PolicyEngine, watch: _Watch) -> None:
    paths = [watch.path] if watch.path is not None else []
    _record(engine, watch.principal, {"event": "rtc_connection_closed", "action": READ, "paths": paths})
