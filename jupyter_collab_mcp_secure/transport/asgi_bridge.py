"""Serve one ASGI HTTP call from inside a tornado handler, streaming the response.

tornado's WSGIContainer buffers whole responses, which breaks SSE; this bridge
writes and flushes each body chunk as the ASGI app sends it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tornado.web import RequestHandler

# Framing is tornado's job; passing these through would corrupt the response.
_HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"transfer-encoding", b"content-length", b"upgrade"})


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
                # A stream's headers go at once: a GET stream may send nothing else for a long time.
                await self._flush()
        elif message["type"] == "http.response.body":
            body = message.get("body", b"")
            if body:
                handler.write(body)
            if message.get("more_body", False):
                await self._flush()
            else:
                self._finished = True
                handler.finish()

    async def _flush(self) -> None:
        try:
            await self.handler.flush()
        except Exception:
            # The peer went away mid-stream; the app learns it from receive().
            self.disconnected.set()

    def finish_if_open(self) -> None:
        """An app that ends without a final body message still closes the response."""
        if not self._finished and not self.disconnected.is_set() and not self.handler._finished:
            self._finished = True
            self.handler.finish()
