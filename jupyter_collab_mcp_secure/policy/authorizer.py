"""One decision point for the whole server: a jupyter_server Authorizer backed by the policy engine.

Opt-in (`CollabMCP.policy_authorize_server`). jupyter_server asks an Authorizer about a
resource type ("contents", "kernels", ...), not a path; this one finds the path the
request is about and decides it like a tool call:

- /api/contents, /files, /nbconvert and the collaboration session/timeline endpoints:
  read (GET) or write (other methods) on the path; a copy needs read on its source,
  a rename write on its target.
- RTC room websocket: read on its document (the global awareness room: read on the
  root). A connection without write on the document keeps its awareness (presence,
  cursors) but its document updates and save requests are dropped and audited.
- Forks: admin on the root document; undo/redo: write on it.
- kernels, sessions, terminals: execute on the root ""; kernelspecs and events: read
  on the root; server shutdown and config writes: admin on the root.
- api (status, identity) and csp reports: any authenticated principal.
Anything else: read on the root for reads, admin on the root otherwise.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jupyter_server.auth import Authorizer
from jupyter_server.auth.identity import User
from traitlets import Any as AnyTrait

from ..gateway.errors import ToolFailure
from ..gateway.paths import canonicalize
from ..identity.principal import Principal
from ..registry import ADMIN, EXECUTE, READ, WRITE
from ..rtc.adapter import GLOBAL_AWARENESS_ROOM
from .engine import PolicyEngine

IdentityResolver = Callable[[Any, User], Principal | None]
ROOT = ""
AUTHENTICATED = None  # a requirement list for resources any authenticated principal may use

# Resources without a path: what they need on the root, by jupyter_server's action.
ROOT_RESOURCES: dict[str, dict[str, str | None]] = {
    "kernels": {"read": EXECUTE, "write": EXECUTE, "execute": EXECUTE},
    "sessions": {"read": EXECUTE, "write": EXECUTE, "execute": EXECUTE},
    "terminals": {"read": EXECUTE, "write": EXECUTE, "execute": EXECUTE},
    "kernelspecs": {"read": READ, "write": ADMIN, "execute": ADMIN},
    # The event stream carries every principal's audit records and document paths.
    "events": {"read": ADMIN, "write": ADMIN, "execute": ADMIN},
    "server": {"read": ADMIN, "write": ADMIN, "execute": ADMIN},
    "config": {"read": AUTHENTICATED, "write": ADMIN, "execute": ADMIN},
    "api": {"read": AUTHENTICATED, "write": ADMIN, "execute": ADMIN},
    "csp": {"read": AUTHENTICATED, "write": AUTHENTICATED, "execute": ADMIN},
}
PATH_RESOURCES = ("contents", "files", "nbconvert")
AUDIT_DROP_EVERY_SECONDS = 10.0

log = logging.getLogger(__name__)


class _Refused(Exception):
    """The request names a path that is not canonical or not known: deny."""


class PolicyAuthorizer(Authorizer):
    engine = AnyTrait(help="The PolicyEngine deciding every request.")
    identity_resolver = AnyTrait(help="(handler, user) -> Principal for the request.")
    root = AnyTrait(help="The resolved server root.")

    async def is_authorized(self, handler: Any, user: User, action: str, resource: str) -> bool:
        principal = self.identity_resolver(handler, user)
        if hasattr(principal, "__await__"):
            principal = await principal
        if principal is None:
            return False
        try:
            needs = self._requirements(handler, action, resource)
        except _Refused as refused:
            self.log.warning("refused %s %s for %s: %s", action, resource, principal.user, refused)
            return False
        for policy_action, path in needs:
            if not self.engine.allowed(principal, policy_action, path):
                self.log.info(
                    "policy denies %s %s on %r (%s %s)",
                    principal.user,
                    policy_action,
                    path,
                    action,
                    resource,
                )
                return False
        document = _room_document(self, handler)
        if document is not None:
            _guard_room_updates(handler, self.engine, principal, document)
        return True

    def _requirements(self, handler: Any, action: str, resource: str) -> list[tuple[str, str]]:
        from jupyter_server_ydoc import handlers as ydoc

        policy_action = READ if action == "read" else WRITE
        if isinstance(handler, ydoc.YDocWebSocketHandler):
            return [(READ, _room_document(self, handler) or ROOT)]
        if isinstance(handler, ydoc.DocForkHandler):
            method = handler.request.method
            room = handler.path_args[0] if handler.path_args else ""
            if method == "DELETE":
                fork = ydoc.FORK_ROOMS.get(room)
                if fork is None:
                    raise _Refused(f"unknown fork {room!r}")
                room = fork["root_roomid"]
            return [(READ if method == "GET" else ADMIN, self._room_path(handler, room))]
        if isinstance(handler, ydoc.UndoRedoHandler):
            return [(WRITE, self._room_path(handler, handler.path_args[0]))]
        if isinstance(handler, (ydoc.DocSessionHandler, ydoc.TimelineHandler)):
            return [(READ, self._canonical(handler.path_args[0]))]
        if resource in PATH_RESOURCES:
            path = self._canonical(_path_argument(handler))
            needs = [(policy_action, path)]
            needs.extend(self._body_paths(handler))
            return needs
        table = ROOT_RESOURCES.get(resource)
        if table is None:
            return [(READ if action == "read" else ADMIN, ROOT)]
        needed = table.get(action, ADMIN)
        return [] if needed is AUTHENTICATED else [(needed, ROOT)]

    def _body_paths(self, handler: Any) -> list[tuple[str, str]]:
        """Contents requests that name a second path in their body: copy source, rename target."""
        method = handler.request.method
        if method not in ("POST", "PATCH") or not handler.request.body:
            return []
        try:
            body = json.loads(handler.request.body)
        except ValueError:
            return []
        if not isinstance(body, dict):
            return []
        if method == "POST" and isinstance(body.get("copy_from"), str):
            return [(READ, self._canonical(body["copy_from"]))]
        if method == "PATCH" and isinstance(body.get("path"), str):
            return [(WRITE, self._canonical(body["path"]))]
        return []

    def _canonical(self, raw: str | None) -> str:
        try:
            return canonicalize((raw or "").lstrip("/"), self.root)
        except ToolFailure as failure:
            raise _Refused(failure.message) from None

    def _room_path(self, handler: Any, room_id: str) -> str:
        path = _document_of_room(handler, room_id)
        if path is None:
            raise _Refused(f"room {room_id!r} has no known document")
        return self._canonical(path)


def _path_argument(handler: Any) -> str:
    if "path" in handler.path_kwargs:
        return handler.path_kwargs["path"] or ""
    if handler.path_args:
        return handler.path_args[-1] or ""
    return ""


def _document_of_room(handler: Any, room_id: str) -> str | None:
    parts = room_id.split(":", 2)
    if len(parts) != 3:
        return None
    return handler.settings["file_id_manager"].get_path(parts[2])


def _room_document(authorizer: PolicyAuthorizer, handler: Any) -> str | None:
    """The canonical document path of an RTC room websocket; None for other handlers or transient rooms."""
    from jupyter_server_ydoc.handlers import YDocWebSocketHandler
    from jupyter_server_ydoc.utils import room_id_from_encoded_path

    if not isinstance(handler, YDocWebSocketHandler):
        return None
    from jupyter_server_ydoc.handlers import FORK_ROOMS

    room_id = getattr(handler, "_room_id", "") or room_id_from_encoded_path(handler.request.path)
    fork = FORK_ROOMS.get(room_id)
    if fork is not None:
        # A fork is read and edited under the grants of the document it was made from.
        room_id = fork["root_roomid"]
    if room_id == GLOBAL_AWARENESS_ROOM:
        return None
    if room_id.count(":") < 2:
        raise _Refused(f"unknown collaboration room {room_id!r}")
    return authorizer._room_path(handler, room_id)


# Yjs wire format (y-protocols): message type, then for sync messages a sub-type.
_SYNC, _AWARENESS = 0, 1
_SYNC_STEP1 = 0


def _guard_room_updates(handler: Any, engine: PolicyEngine, principal: Principal, path: str) -> None:
    """Drop a connection's document updates whenever its principal lacks write on the document.

    The room applies updates without knowing their sender, so the only place to refuse
    them is this connection's own message handler. Asked per message, so a policy
    reload takes effect on open connections too.
    """
    deliver = handler.on_message
    dropped = {"count": 0, "audited_at": None}

    async def on_message(message: bytes) -> Any:
        if not engine.allowed(principal, READ, path):
            handler.close(4403, "read access to this document was revoked")
            return None
        if _is_read_only_safe(message) or engine.allowed(principal, WRITE, path):
            return await deliver(message)
        dropped["count"] += 1
        now = time.monotonic()
        if dropped["audited_at"] is None or now - dropped["audited_at"] >= AUDIT_DROP_EVERY_SECONDS:
            _audit_drop(engine, principal, path, dropped["count"])
            dropped["audited_at"], dropped["count"] = now, 0
        return None

    handler.on_message = on_message


def _is_read_only_safe(message: bytes) -> bool:
    """Awareness and the sync request (a state vector) change no document."""
    if not message:
        return False
    if message[0] == _AWARENESS:
        return True
    return message[0] == _SYNC and len(message) > 1 and message[1] == _SYNC_STEP1


def _audit_drop(engine: PolicyEngine, principal: Principal, path: str, count: int) -> None:
    log.warning(
        "dropped %d RTC update(s) from %s on %r: no write access",
        count,
        principal.label,
        path,
    )
    trail = engine.audit_trail
    if trail is None:
        return
    try:
        trail.record(
            {
                "event": "rtc_update_dropped",
                "user": principal.user,
                "auth": principal.auth,
                "agent": principal.agent,
                "action": WRITE,
                "paths": [path],
                "decision": "deny",
                "outcome": "denied",
                "dropped": count,
            }
        )
    except Exception:
        log.exception("could not audit a dropped RTC update")


def install_server_authorizer(
    serverapp: Any, engine: PolicyEngine, identity_resolver: IdentityResolver
) -> PolicyAuthorizer:
    """Make the policy engine the server's Authorizer (call from initialize_settings)."""
    authorizer = PolicyAuthorizer(
        parent=serverapp,
        log=serverapp.log,
        identity_provider=serverapp.identity_provider,
        engine=engine,
        identity_resolver=identity_resolver,
        root=Path(serverapp.root_dir).resolve(),
    )
    serverapp.authorizer = authorizer
    serverapp.web_app.settings["authorizer"] = authorizer
    return authorizer
