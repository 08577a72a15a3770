"""Serve one ASGI HTTP call from inside a tornado handler, streaming the response.

tornado's WSGIContainer buffers whole responses, which breaks SSE; this bridge
writes and flushes each body chunk as the ASGI app sends it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tornado.web import RequestHandler

from ..upstream import handler_finished

# Framing is tornado's job; passing these through would corrupt the response.
_HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"transfer-encoding", b"content-length", b"upgrade"})
# How long a POST's event-stream headers wait for the first event to share their write (seconds).
_POST_HEADERS_WAIT = 0.05


def http_scope(handler: RequestHandler, root_path: str, extra: dict[str, Any]) -> dict[str, Any]:
    request = handler.request
    host, _, port = request.host.rpartition(":") if ":" in request.host else (request.host, "", "")
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": request.version.removeprefix("HTTP/"),
        "method": request.method,
        "scheme": request.protocol,
        "path": request.path,
        "raw_path": request.path.encode(),
        "root_path": root_path,
        "query_string": (request.query or "").encode(),
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in request.headers.get_all()],
        "client": (request.remote_ip, 0),
        "server": (host or request.host, int(port) if port.isdigit() else None),
        **extra,
    }


class TornadoASGIBridge:
    """One request's worth of ASGI receive/send bound to a tornado handler."""

    def __init__(self, handler: RequestHandler) -> None:
        self.handler = handler
        self.disconnected = asyncio.Event()
        self._body_sent = False
        self._finished = False
        self._headers_timer: asyncio.TimerHandle | None = None
        self._headers_flush: asyncio.Task[None] | None = None

    async def receive(self) -> dict[str, Any]:
        if not self._body_sent:
            self._body_sent = True
            return {"type": "http.request", "body": self.handler.request.body or b"", "more_body": False}
        await self.disconnected.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        if self._finished or self.disconnected.is_set():
            return
        handler = self.handler
        if message["type"] == "http.response.start":
            handler.set_status(message["status"])
            handler.clear_header("Content-Type")
            for key, value in message.get("headers", ()):
                if key.lower() in _HOP_BY_HOP:
                    continue
                handler.add_header(key.decode("latin-1"), value.decode("latin-1"))
            if dict(message.get("headers", ())).get(b"content-type", b"").startswith(b"text/event-stream"):
                if handler.request.method == "GET":
                    # A GET stream may send nothing else for a long time: its headers go at once.
                    await self._flush()
                else:
                    # A POST's stream mostly carries just the result, soon: its headers go out in the same
                    # write as that first event (one socket write fewer per call), or on their own if the
                    # call takes longer, so the client never waits on a long call for the headers.
                    self._headers_timer = asyncio.get_running_loop().call_later(_POST_HEADERS_WAIT, self._flush_headers)
        elif message["type"] == "http.response.body":
            self._cancel_headers_timer()
            body = message.get("body", b"")
            if body:
                handler.write(body)
            if message.get("more_body", False):
                await self._flush()
            else:
                self._finished = True
                handler.finish()

    def _flush_headers(self) -> None:
        self._headers_timer = None
        if not self._finished and not self.disconnected.is_set():
            self._headers_flush = asyncio.ensure_future(self._flush())

    def _cancel_headers_timer(self) -> None:
        if self._headers_timer is not None:
            self._headers_timer.cancel()
            self._headers_timer = None

    async def _flush(self) -> None:
        try:
            await self.handler.flush()
        except Exception:
            # The peer went away mid-stream; the app learns it from receive().
            self.disconnected.set()

    def finish_if_open(self) -> None:
        """An app that ends without a final body message still closes the response."""
        self._cancel_headers_timer()
        if not self._finished and not self.disconnected.is_set() and not handler_finished(self.handler):
            self._finished = True
            self.handler.finish()
