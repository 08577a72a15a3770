"""The tornado side of the endpoint: {base_url}mcp, its RFC 9728 metadata and the OAuth paths clients probe."""

from __future__ import annotations

import ipaddress
import json
import os
import re
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.utils import url_path_join
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp_types import INVALID_REQUEST

from ..identity.authenticate import Unauthenticated
from ..identity.principal import Principal
from .asgi_bridge import TornadoASGIBridge, http_scope

if TYPE_CHECKING:
    from ..extension import CollabMCP

METADATA_PATH = ".well-known/oauth-protected-resource/mcp"

# What clients (the Inspector, mcp-remote) probe on a 401 when no authorization server is named:
# RFC 8414 and OpenID discovery (with or without the resource path appended) and dynamic registration.
OAUTH_FALLBACK_PATTERNS = (
    r"/\.well-known/(?:oauth-authorization-server|openid-configuration)(?:/.*)?",
    r"/mcp/\.well-known/(?:oauth-authorization-server|openid-configuration)",
    r"/register",
)

# RFC 6750 allows only these characters inside error_description.
_NOT_IN_DESCRIPTION = re.compile(r"[^\x20-\x21\x23-\x5b\x5d-\x7e]")
_DESCRIPTION_MAX = 300


def under_jupyterhub() -> bool:
    return bool(os.environ.get("JUPYTERHUB_API_URL"))


def token_hint() -> str:
    """Where a user gets a token: shown wherever a client would otherwise end in a dead end."""
    if under_jupyterhub():
        return (
            "Send a JupyterHub API token as 'Authorization: Bearer <token>'; "
            "create one on the hub's token page (/hub/token)."
        )
    return (
        "Send this Jupyter server's token as 'Authorization: Bearer <token>': "
        "'jupyter server list' shows it for running servers, and the demo keeps it in the token file it prints."
    )


def challenge_description(text: str) -> str:
    return _NOT_IN_DESCRIPTION.sub("?", text)[:_DESCRIPTION_MAX]


def bad_request_id(body: bytes) -> bool:
    """A JSON-RPC message whose `id` MCP cannot answer: neither a string nor a finite integer (NaN, 1e400, objects)."""
    try:
        message = json.loads(body)
    except (ValueError, RecursionError):
        return False  # not JSON the SDK can take either: it answers that itself
    messages = message if isinstance(message, list) else [message]
    return any(
        isinstance(item, dict)
        and "id" in item
        and not (isinstance(item["id"], str) or (isinstance(item["id"], int) and not isinstance(item["id"], bool)))
        for item in messages
    )


def absolute_url(url: str) -> bool:
    parsed = urlsplit(url)
    return parsed.scheme in ("https", "http") and bool(parsed.netloc)


def standalone(base_url: str) -> bool:
    """The server owns its origin (so the OAuth paths at its root are its to answer)."""
    return base_url == "/" and not under_jupyterhub()


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
        metadata: dict[str, Any] = {
            "resource": self.resource_url(),
            "bearer_methods_supported": ["header"],
            "resource_name": "Jupyter collaboration (MCP)",
        }
        # Deliberately omitted when there is none (RFC 9728 asks for one): naming a server that cannot
        # issue tokens sends clients into registration that can only fail.
        servers = self.collab.authorization_server_urls()
        if servers:
            metadata["authorization_servers"] = servers
        self.write_json(200, metadata)


class OAuthFallbackHandler(_EndpointHandler):
    """The origin's OAuth paths on a standalone server: a JSON OAuth error that says how to authenticate.

    This server issues no tokens and registers no clients. Clients that find no
    authorization server still try these paths and print what answers, so the
    answer is the way out (never Jupyter's HTML page).
    """

    async def prepare(self) -> None:
        await self.reject_foreign()

    def refuse_oauth(self) -> None:
        registering = self.request.path.rstrip("/").endswith("/register")
        self.set_cors_headers()
        self.write_json(
            400 if registering else 404,
            {
                "error": "invalid_request",
                "error_description": "This Jupyter server is not an OAuth authorization server and registers no "
                "clients. " + token_hint(),
            },
        )

    async def get(self, *args: Any) -> None:
        self.refuse_oauth()

    async def post(self, *args: Any) -> None:
        self.refuse_oauth()


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
        self.settings["api_last_activity"] = datetime.now(timezone.utc)

    async def refuse(self, refusal: Unauthenticated) -> None:
        if refusal.insufficient_scope:
            # A valid hub token whose user this server is not shared with: RFC 6750's 403, not "log in again".
            description = challenge_description(refusal.reason)
            self.set_header(
                "WWW-Authenticate",
                f'Bearer error="insufficient_scope", error_description="{description}", '
                f'resource_metadata="{self.metadata_url()}"',
            )
            await self.collab.record_auth_failure(self.request.remote_ip or "", refusal.reason, refusal.method)
            self.write_json(403, {"error": "insufficient_scope", "error_description": refusal.reason})
            return
        description = f"{refusal.reason}. {token_hint()}"
        # RFC 6750: error only when a token was presented; a request without one just gets the challenge.
        params = []
        if refusal.presented:
            params.append(f'error="invalid_token", error_description="{challenge_description(description)}"')
        params.append(f'resource_metadata="{self.metadata_url()}"')
        self.set_header("WWW-Authenticate", "Bearer " + ", ".join(params))
        await self.collab.record_auth_failure(self.request.remote_ip or "", refusal.reason, refusal.method)
        self.write_json(
            401, {"error": "invalid_token" if refusal.presented else "unauthorized", "error_description": description}
        )

    async def serve(self) -> None:
        assert self.principal is not None
        if self.request.method == "POST" and bad_request_id(self.request.body):
            # The SDK would take such a request for a notification: 202, and the client never hears back.
            self.write_json(
                400,
                {
                    "jsonrpc": "2.0",
                    "id": None,
                    "error": {
                        "code": INVALID_REQUEST,
                        "message": "Invalid Request: 'id' must be a string or an integer",
                    },
                },
            )
            return
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
