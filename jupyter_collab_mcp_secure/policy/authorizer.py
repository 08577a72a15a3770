"""One decision point for the whole server: a jupyter_server Authorizer backed by the policy engine.

Opt-in (`CollabMCP.policy_authorize_server`). Every route passes the route gate
(policy.routes), which names the resource a request is about; jupyter_server's own
`@authorized` checks arrive here too, with the same answer. A resource is a type
("contents", "kernels", ...), not a path; this Authorizer finds the path the request
is about and decides it like a tool call:

- /api/contents, /files, /view, /nbconvert and the collaboration session/timeline
  endpoints: read (GET) or write (other methods) on the path; a copy needs read on its
  source, a rename write on its target. Renaming, copying or deleting a folder needs the
  action on the folder's whole subtree (policy.subtree), on both ends of a move.
- /api/fileid: read on the path it names (given, or the id's current path).
- RTC room websocket: read on its document (the global awareness room: read on the
  root), re-decided while it is open (policy.rooms).
- Forks: admin on the root document; undo/redo: write on it.
- kernels, sessions, terminals, language servers: execute on the root; kernelspecs:
  read on the root; JupyterLab settings, workspaces and extensions: read on the root to
  read, admin to change; events, shutdown, metrics: admin on the root.
- api (status, identity) and csp reports: any authenticated principal.
Any other resource (an extension's own): admin on the root.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, NamedTuple

from jupyter_server.auth import Authorizer
from jupyter_server.auth.identity import User
from traitlets import Any as AnyTrait

from ..gateway.errors import ToolFailure
from ..gateway.paths import canonicalize
from ..identity.principal import Principal
from ..registry import ADMIN, EXECUTE, READ, WRITE
from ..room_ids import GLOBAL_AWARENESS_ROOM, file_id_of
from ..upstream import websocket_room_id
from .glob import path_problem
from .rooms import CONTENTS_EVENTS, RoomConnections
from .routes import RouteGate

ROOT = ""
AUTHENTICATED = None  # a requirement list for resources any authenticated principal may use

_ALL_ADMIN = {"read": ADMIN, "write": ADMIN, "execute": ADMIN}
_READ_ELSE_ADMIN = {"read": READ, "write": ADMIN, "execute": ADMIN}
_EXECUTE = {"read": EXECUTE, "write": EXECUTE, "execute": EXECUTE}
# Resources without a path: what they need on the root, by jupyter_server's action.
ROOT_RESOURCES: dict[str, dict[str, str | None]] = {
    "kernels": _EXECUTE,
    "sessions": _EXECUTE,
    "terminals": _EXECUTE,
    # jupyter_lsp asks "lsp" itself: read for its status, execute for a language server websocket.
    "lsp": {"read": READ, "write": EXECUTE, "execute": EXECUTE},
    "lsp_ws": _EXECUTE,
    "kernelspecs": _READ_ELSE_ADMIN,
    "resolve_path": _READ_ELSE_ADMIN,
    "nbconvert_post": {"read": READ, "write": READ, "execute": ADMIN},
    "lab_settings": _READ_ELSE_ADMIN,
    "lab_workspaces": _READ_ELSE_ADMIN,
    "lab_extensions": _READ_ELSE_ADMIN,
    # The event stream carries every principal's audit records and document paths.
    "events": _ALL_ADMIN,
    "server": _ALL_ADMIN,
    "config": {"read": AUTHENTICATED, "write": ADMIN, "execute": ADMIN},
    "api": {"read": AUTHENTICATED, "write": ADMIN, "execute": ADMIN},
    "csp": {"read": AUTHENTICATED, "write": AUTHENTICATED, "execute": ADMIN},
}
PATH_RESOURCES = ("contents", "files", "nbconvert")


class Need(NamedTuple):
    action: str
    path: str
    # The action on everything that could be beneath `path`, not just on `path`.
    subtree: bool = False


class _Refused(Exception):
    """The request names a path that is not canonical or not known: deny."""


class PolicyAuthorizer(Authorizer):
    engine = AnyTrait(help="The PolicyEngine deciding every request.")
    identity_resolver = AnyTrait(help="(handler, user) -> Principal for the request.")
    root = AnyTrait(help="The resolved server root.")
    rooms = AnyTrait(help="The open room connections (policy.rooms), re-decided while they live.")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.rooms is None:
            self.rooms = RoomConnections(self.engine, self.canonical_or_none)

    async def is_authorized(self, handler: Any, user: User, action: str, resource: str) -> bool:
        principal = await self._principal(handler, user)
        if principal is None or not self.decide(principal, handler, action, resource):
            return False
        try:
            document = _room_document(self, handler)
        except _Refused:
            return False
        if document is not None:
            self.rooms.watch(handler, principal, document)
        return True

    async def allows_route(self, handler: Any, action: str, resource: str) -> bool:
        """The route gate's question (policy.routes): the same decision as `is_authorized`."""
        principal = await self._principal(handler, handler.current_user)
        return principal is not None and self.decide(principal, handler, action, resource)

    async def _principal(self, handler: Any, user: User | None) -> Principal | None:
        if user is None:
            return None
        principal = self.identity_resolver(handler, user)
        if hasattr(principal, "__await__"):
            principal = await principal
        return principal

    def decide(self, principal: Principal, handler: Any, action: str, resource: str) -> bool:
        try:
            needs = self._requirements(handler, action, resource)
        except _Refused as refused:
            self.log.warning("refused %s %s for %s: %s", action, resource, principal.user, refused)
            self._audit_denial(principal, resource, None)
            return False
        for need in needs:
            decide = self.engine.allowed_subtree if need.subtree else self.engine.allowed
            if not decide(principal, need.action, need.path):
                self.log.info(
                    "policy denies %s %s on %r%s (%s %s)",
                    principal.user,
                    need.action,
                    need.path,
                    " and beneath" if need.subtree else "",
                    action,
                    resource,
                )
                self._audit_denial(principal, resource, need)
                return False
        return True

    def _audit_denial(self, principal: Principal, resource: str, need: Need | None) -> None:
        trail = self.engine.audit_trail
        if trail is None:
            return
        try:
            trail.record(
                {
                    "event": "request_denied",
                    "user": principal.user,
                    "auth": principal.auth,
                    "agent": principal.agent,
                    "resource": resource if resource in ROOT_RESOURCES or resource in PATH_RESOURCES else "other",
                    "action": need.action if need else None,
                    "paths": [need.path] if need else [],
                    "subtree": bool(need and need.subtree),
                    "decision": "deny",
                    "outcome": "denied",
                }
            )
        except Exception:  # noqa: BLE001 - the refusal stands whether or not the record is written
            self.log.exception("could not audit a refused request")

    def _requirements(self, handler: Any, action: str, resource: str) -> list[Need]:
        from jupyter_server.nbconvert.handlers import NbconvertPostHandler
        from jupyter_server_fileid.handler import FileIDHandler, FilePathHandler
        from jupyter_server_ydoc import handlers as ydoc

        policy_action = READ if action == "read" else WRITE
        if isinstance(handler, ydoc.YDocWebSocketHandler):
            return [Need(READ, _room_document(self, handler) or ROOT)]
        if isinstance(handler, ydoc.DocForkHandler):
            method = handler.request.method
            room = handler.path_args[0] if handler.path_args else ""
            if method == "DELETE":
                fork = ydoc.FORK_ROOMS.get(room)
                if fork is None:
                    raise _Refused(f"unknown fork {room!r}")
                room = fork["root_roomid"]
            return [Need(READ if method == "GET" else ADMIN, self.room_path(handler, room))]
        if isinstance(handler, ydoc.UndoRedoHandler):
            return [Need(WRITE, self.room_path(handler, handler.path_args[0]))]
        if isinstance(handler, (ydoc.DocSessionHandler, ydoc.TimelineHandler)):
            return [Need(READ, self._canonical(handler.path_args[0]))]
        if isinstance(handler, FileIDHandler):
            return [Need(READ, self._canonical(handler.get_argument("path", "")))]
        if isinstance(handler, FilePathHandler):
            path = handler.settings["file_id_manager"].get_path(handler.get_argument("id", ""))
            # An unknown id maps nothing: the handler answers 404 to anyone.
            return [] if path is None else [Need(READ, self._canonical(path))]
        if isinstance(handler, NbconvertPostHandler):
            resource = "nbconvert_post"  # converts the notebook in its body: no path of its own
        if resource in PATH_RESOURCES:
            path = self._canonical(_path_argument(handler))
            if resource == "contents" and handler.request.method == "DELETE" and self._is_folder(path):
                return [Need(WRITE, path, subtree=True)]
            return [Need(policy_action, path), *self._body_paths(handler, path)]
        table = ROOT_RESOURCES.get(resource)
        if table is None:
            # An extension's own resource: the owner keeps it, nobody else gets it by default.
            return [Need(ADMIN, ROOT)]
        needed = table.get(action, ADMIN)
        return [] if needed is AUTHENTICATED else [Need(needed, ROOT)]

    def _body_paths(self, handler: Any, path: str) -> list[Need]:
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
            source = self._canonical(body["copy_from"])
            if self._is_folder(source):
                return [Need(READ, source, subtree=True), Need(WRITE, path, subtree=True)]
            return [Need(READ, source)]
        if method == "PATCH" and isinstance(body.get("path"), str):
            target = self._canonical(body["path"])
            if self._is_folder(path):
                # Everything beneath leaves the source and arrives beneath the target.
                return [Need(WRITE, path, subtree=True), Need(WRITE, target, subtree=True)]
            return [Need(WRITE, target)]
        return []

    def _is_folder(self, path: str) -> bool:
        return os.path.isdir(self.root / path) if path else True

    def _canonical(self, raw: str | None) -> str:
        try:
            path = canonicalize((raw or "").lstrip("/"), self.root)
        except ToolFailure as failure:
            raise _Refused(failure.message) from None
        problem = path_problem(path)
        if problem:
            raise _Refused(problem)
        return path

    def canonical_or_none(self, raw: str) -> str | None:
        try:
            return self._canonical(raw)
        except _Refused:
            return None

    def room_path(self, handler: Any, room_id: str) -> str:
        """The canonical path of a room's document; refused when the room names none."""
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
    file_id = file_id_of(room_id)
    if file_id is None:
        return None
    return handler.settings["file_id_manager"].get_path(file_id)


def _room_document(authorizer: PolicyAuthorizer, handler: Any) -> str | None:
    """The canonical document path of an RTC room websocket; None for other handlers or transient rooms."""
    from jupyter_server_ydoc.handlers import FORK_ROOMS, YDocWebSocketHandler
    from jupyter_server_ydoc.utils import room_id_from_encoded_path

    if not isinstance(handler, YDocWebSocketHandler):
        return None
    room_id = websocket_room_id(handler) or room_id_from_encoded_path(handler.request.path)
    fork = FORK_ROOMS.get(room_id)
    if fork is not None:
        # A fork is read and edited under the grants of the document it was made from.
        room_id = fork["root_roomid"]
    if room_id == GLOBAL_AWARENESS_ROOM:
        return None
    if file_id_of(room_id) is None:
        raise _Refused(f"unknown collaboration room {room_id!r}")
    return authorizer.room_path(handler, room_id)


def install_server_authorizer(serverapp: Any, engine: Any, identity_resolver: Any) -> PolicyAuthorizer:
    """Make the policy engine the server's Authorizer and gate every route (call from initialize_settings)."""
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
    RouteGate(serverapp.base_url, authorizer.allows_route).install(serverapp.web_app)
    serverapp.event_logger.add_listener(schema_id=CONTENTS_EVENTS, listener=authorizer.rooms.on_contents_event)
    return authorizer
