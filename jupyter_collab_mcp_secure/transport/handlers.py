"""The tornado side of the endpoint: {base_url}mcp and its RFC 9728 metadata."""

from __future__ import annotations

import ipaddress
import json
from typing import TYPE_CHECKING, Any

from jupyter_server._tz import utcnow
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.utils import url_path_join
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken

from ..identity.authenticate import Unauthenticated
from ..identity.principal import Principal
from .asgi_bridge import TornadoASGIBridge, http_scope

if TYPE_CHECKING:
    from ..extension import CollabMCP

METADATA_PATH = ".well-known/oauth-protected-resource/mcp"


class PrincipalUser(AuthenticatedUser):
    """The scope user the SDK binds sessions to: another principal reusing a session id gets 404."""

    def __init__(self, principal: Principal) -> None:
        super().__init__(
            AccessToken(
                token="",  # the credential itself never travels past the handler
                client_id=principal.agent or principal.user,
                subject=principal.user,
                scopes=[],
                claims={"iss": principal.realm},
            )
        )
        self.principal = principal


class _EndpointHandler(JupyterHandler):
    collab: CollabMCP

    def initialize(self, collab: CollabMCP) -> None:
        self.collab = collab

    def own_origin(self) -> str:
        return f"{self.request.protocol}://{self.request.host}"

    def host_allowed(self) -> bool:
        """Jupyter's own check, unless `allowed_hosts` names the hosts (it then holds whatever the bind address)."""
        if not self.collab.allowed_hosts:
            return self.check_host()
        host = self.request.host_name.strip("[]").lower()
        if host in ("localhost", *self.collab.allowed_hosts):
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    def origin_allowed(self) -> bool:
        origin = self.request.headers.get("Origin")
        # Non-browser clients send no Origin; browsers always do, and only ours or listed ones pass.
        return origin is None or origin == self.own_origin() or origin in self.collab.allowed_origins

    def set_cors_headers(self) -> None:
        origin = self.request.headers.get("Origin")
        if origin and origin in self.collab.allowed_origins:
            self.set_header("Access-Control-Allow-Origin", origin)
            self.set_header("Vary", "Origin")

    def set_cookie(self, *args: Any, **kwargs: Any) -> None:
        # The IdentityProvider sets a login cookie on token logins; /mcp must never mint one.
        return None

    def check_xsrf_cookie(self) -> None:
        # Safe only because cookies never authenticate on these routes (see identity.authenticate).
        return None

    def compute_etag(self) -> None:
        return None

    def write_json(self, status: int, body: dict[str, Any]) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))

    def resource_url(self) -> str:
        return self.own_origin() + url_path_join(self.base_url, "mcp")

    def metadata_url(self) -> str:
        return self.own_origin() + url_path_join(self.base_url, METADATA_PATH)

    async def reject_foreign(self) -> bool:
        """Host and Origin checks, whatever the bind address; True when the request was refused."""
        if not self.host_allowed():
            self.write_json(403, {"error": "forbidden", "error_description": "Host not allowed"})
            return True
        if not self.origin_allowed():
            self.write_json(403, {"error": "forbidden", "error_description": "Origin not allowed"})
            return True
        return False


class ProtectedResourceMetadataHandler(_EndpointHandler):
    """RFC 9728 metadata, inside base_url so JupyterHub's proxy routes it to this server."""

    async def prepare(self) -> None:
        await self.reject_foreign()

    async def get(self) -> None:
        self.set_cors_headers()
        self.write_json(
            200,
            {
                "resource": self.resource_url(),
                "authorization_servers": self.collab.authorization_server_urls(self.own_origin()),
                "bearer_methods_supported": ["header"],
                "resource_name": "Jupyter collaboration (MCP)",
            },
        )


class MCPHandler(_EndpointHandler):
    principal: Principal | None = None
    _bridge: TornadoASGIBridge | None = None

    async def prepare(self) -> None:  # type: ignore[override]
        if await self.reject_foreign():
            return
        if self.request.method == "OPTIONS":
            return
        if not self.collab.runner.ready:
            self.set_header("Retry-After", "1")
            self.write_json(503, {"error": "unavailable", "error_description": "MCP endpoint is starting or stopping"})
            return
        try:
            self.principal = await self.collab.authenticator.authenticate(self)
        except Unauthenticated as refusal:
            await self.refuse(refusal)
            return
        # JupyterHub's idle culler reads this: MCP work keeps the server alive like browser work does.
        self.settings["api_last_activity"] = utcnow()

    async def refuse(self, refusal: Unauthenticated) -> None:
        challenge = f'Bearer resource_metadata="{self.metadata_url()}"'
        if refusal.insufficient_scope:
            description = refusal.reason.replace('"', "'")
            challenge += f', error="insufficient_scope", error_description="{description}"'
        elif refusal.presented:
            challenge += ', error="invalid_token"'
        self.set_header("WWW-Authenticate", challenge)
        await self.collab.record_auth_failure(self.request.remote_ip or "", refusal.reason, refusal.method)
        if refusal.insufficient_scope:
            self.write_json(403, {"error": "insufficient_scope", "error_description": refusal.reason})
        else:
            self.write_json(401, {"error": "unauthorized", "error_description": refusal.reason})

    async def serve(self) -> None:
        assert self.principal is not None
        self.set_cors_headers()
        bridge = self._bridge = TornadoASGIBridge(self)
        scope = http_scope(self, self.base_url.rstrip("/"), {"user": PrincipalUser(self.principal)})
        try:
            await self.collab.session_manager.handle_request(scope, bridge.receive, bridge.send)
        finally:
            bridge.finish_if_open()

    def on_connection_close(self) -> None:
        if self._bridge is not None:
            self._bridge.disconnected.set()

    async def options(self) -> None:
        self.set_cors_headers()
        self.set_header("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS")
        self.set_header(
            "Access-Control-Allow-Headers",
            "Authorization, Content-Type, Accept, Mcp-Session-Id, Mcp-Protocol-Version, Last-Event-ID",
        )
        self.set_header("Access-Control-Expose-Headers", "Mcp-Session-Id, WWW-Authenticate")
        self.set_status(204)
        self.finish()

    post = get = delete = serve
