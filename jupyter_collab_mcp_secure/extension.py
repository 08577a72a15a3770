"""CollabMCP: the Jupyter Server extension that serves MCP at {base_url}mcp behind the gateway."""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import Any

from jupyter_core.paths import jupyter_data_dir
from jupyter_server.extension.application import ExtensionApp
from jupyter_server.utils import url_path_join
from traitlets import Bool, Float, Int, List, Unicode, default

from .audit.config import AuditConfig
from .gateway.chain import Chain
from .gateway.stages.audit import AuditStage
from .gateway.stages.authorize import AuthorizeStage
from .gateway.stages.identity import IdentityStage
from .gateway.stages.ratelimit import RateLimitStage
from .gateway.stages.resolve import ResolveStage
from .gateway.stages.size import ArgumentSizeStage
from .hub import HubConfig, under_jupyterhub
from .identity.authenticate import Authenticator
from .identity.jwt_verifier import JWTVerifier
from .lifecycle import CallsInFlight, release_worker_threads_at_exit, stop_on_sigint
from .policy.authorizer import install_server_authorizer
from .policy.config import PolicyConfig
from .ratelimit.config import RateLimitConfig
from .rtc.activity import ActivityConfig
from .rtc.adapter import RTCAdapter
from .rtc.attribution import AttributionLog
from .rtc.execution import Executions
from .rtc.forks import ForkRegistry
from .rtc.history import HistoryConfig
from .rtc.peers import AgentPeers
from .rtc.ystore import install_ystore
from .server import build_mcp_server, run_tool
from .transport.handlers import (
    METADATA_PATH,
    MCPHandler,
    ProtectedResourceMetadataHandler,
)
from .transport.session_manager import (
    ManagerRunner,
    ScopedSessionManager,
    SessionConfig,
)
from .trusted_files import ServedTrustedFile, refuse_served_trusted_files


class CollabMCP(
    ExtensionApp, AuditConfig, PolicyConfig, RateLimitConfig, ActivityConfig, SessionConfig, HistoryConfig, HubConfig
):
    name = "jupyter_collab_mcp_secure"
    description = __doc__

    owner = Unicode(
        help=(
            "Name of the principal who presents the server's own token (role:owner). "
            "Default: $JUPYTERHUB_USER under JupyterHub, else the OS user name. A Hub or "
            "JWT identity with this user name is the owner as well."
        ),
    ).tag(config=True)

    @default("owner")
    def _default_owner(self) -> str:
        return os.environ.get("JUPYTERHUB_USER") or getpass.getuser()

    allowed_origins = List(
        Unicode(),
        help=(
            "Browser origins (scheme://host[:port]) besides the server's own allowed to call /mcp. "
            "Requests without an Origin header (non-browser clients) are always allowed; "
            "never use '*'."
        ),
    ).tag(config=True)

    allowed_hosts = List(
        Unicode(),
        help=(
            "Host names /mcp answers to (besides localhost and loopback addresses), checked whatever "
            "the bind address, against DNS rebinding. Empty: Jupyter's own Host check, which accepts "
            "any host when ServerApp.allow_remote_access is on (bearer-only authentication keeps a "
            "rebound page from using a browser's credentials either way)."
        ),
    ).tag(config=True)

    authorization_servers = List(
        Unicode(),
        help=(
            "OAuth authorization servers advertised in the RFC 9728 metadata. Default: the JWT "
            "issuer if configured, else the JupyterHub URL under JupyterHub, else this server."
        ),
    ).tag(config=True)

    jwt_secret_file = Unicode("", help="File holding the HMAC secret for HS256/384/512 JWTs.").tag(config=True)
    jwt_key_file = Unicode(
        "", help="File holding the public key for RS*/PS*/ES*/EdDSA JWTs: a PEM public key, a JWK or a JWKS (JSON)."
    ).tag(config=True)
    jwt_algorithms = List(
        Unicode(),
        default_value=["RS256", "ES256"],
        help="JWT algorithms accepted (allow-list; 'none' is never accepted).",
    ).tag(config=True)
    jwt_audience = Unicode(
        "", help="Required `aud` of JWTs. JWT authentication is off unless a key and an audience are set."
    ).tag(config=True)
    jwt_issuer = Unicode("", help="Required `iss` of JWTs (checked when set).").tag(config=True)
    jwt_user_claim = Unicode("sub", help="JWT claim naming the user.").tag(config=True)
    jwt_groups_claim = Unicode("groups", help="JWT claim listing the user's groups.").tag(config=True)
    jwt_ignore_groups = Bool(
        False,
        help=(
            "Ignore the groups claim of JWTs (a JWT principal then has no groups): for sites where "
            "the hub stays the one source of truth for group membership."
        ),
    ).tag(config=True)
    jwt_agent_claims = List(
        Unicode(), default_value=["azp", "client_id"], help="JWT claims naming the agent (first present wins)."
    ).tag(config=True)
    jwt_leeway = Float(0, help="Seconds of clock skew tolerated for exp/nbf/iat.").tag(config=True)

    output_max_chars = Int(
        20_000, help="Characters of output text returned per cell to the model; the rest is marked truncated."
    ).tag(config=True)
    document_read_max_chars = Int(
        500_000,
        help="Characters of a text document get_document returns per call; longer ones are read in parts (offset).",
    ).tag(config=True)
    room_idle_cleanup_delay = Float(
        30, help="Seconds a room opened by MCP (with nobody connected) stays open after its last use."
    ).tag(config=True)
    max_request_body_bytes = Int(
        4 * 1024 * 1024, help="Largest MCP request body accepted; larger ones get HTTP 413."
    ).tag(config=True)
    session_idle_timeout = Float(
        1800, help="Seconds after which an idle MCP session (initialize-handshake era) is closed."
    ).tag(config=True)

    state_dir = Unicode(
        help=(
            "Folder for this extension's own state (edit attribution, history store). Keep it "
            "outside the served root, or deny it in the policy. Default: <jupyter data dir>/collab_mcp_secure."
        ),
    ).tag(config=True)

    @default("state_dir")
    def _default_state_dir(self) -> str:
        return str(Path(jupyter_data_dir()) / "collab_mcp_secure")

    agent_idle_timeout = Float(
        300,
        help=(
            "Seconds after its last call that touched a document (edit, execution, cursor, join, "
            "presence, broadcast) that an agent stops showing as a collaborator."
        ),
    ).tag(config=True)
    execution_timeout_max = Float(
        3600, help="Largest `timeout` (seconds) execute_notebook_cell accepts; larger values are reduced to it."
    ).tag(config=True)
    fork_ttl = Float(3600, help="Seconds after which a fork that was never merged is dropped and its room closed.").tag(
        config=True
    )

    @default("policy_authorize_server")
    def _default_policy_authorize_server(self) -> bool:
        # A shared hub server must not leave REST and the RTC websocket open to what MCP refuses.
        return under_jupyterhub()

    def initialize_settings(self) -> None:
        self.root = Path(self.serverapp.root_dir).resolve()
        self._refuse_served_trusted_files(self._trusted_files())
        self.apply_hub_token_cache(self.serverapp.identity_provider, self.log)
        # Before anything opens a room: rooms created by the server must share history's store.
        install_ystore(self.serverapp, Path(self.state_dir) / "ystore.sqlite", self.log)
        self.authenticator = Authenticator(owner=self.owner, jwt_verifier=self._jwt_verifier())
        self.audit = self.make_audit_trail(str(self.root), self.log)
        self._refuse_served_trusted_files(self._audit_files())
        self.audit.attach_event_logger(self.serverapp.event_logger)
        self.limiter = self.make_rate_limiter(self.log)
        self.policy = self.make_policy_engine(self.audit, self.log)
        if not self.policy_authorize_server and under_jupyterhub():
            self.log.warning(
                "policy_authorize_server is off: anyone this server is shared with can read, write and run "
                "everything over Jupyter's REST API and the collaboration websocket; the policy guards /mcp only"
            )
        if self.policy_authorize_server:
            authorizer = install_server_authorizer(
                self.serverapp, self.policy, self.authenticator.principal_for_server_request
            )
            # ExtensionApp copies self.settings over the web app's settings after this method.
            self.settings["authorizer"] = authorizer
        self.rtc = RTCAdapter(self.serverapp, self.log, self.room_idle_cleanup_delay)
        self.attribution = AttributionLog(Path(self.state_dir) / "attribution.sqlite")
        self.peers = AgentPeers(self.rtc, self.log, self.agent_idle_timeout, activity=self.make_activity_feed())
        self.executions = Executions(self.serverapp, self.log)
        self.forks = ForkRegistry(self.rtc, self.log, self.fork_ttl)
        self.calls = CallsInFlight(self.serverapp.web_app.settings, self.activity_bump_interval)
        self.chain = Chain(
            [
                IdentityStage(),
                AuditStage(self.audit),
                ArgumentSizeStage(self.max_argument_bytes, self.max_edit_chars),
                ResolveStage(self.root, {"session_id": self.rtc.path_of_room, "fork_id": self.forks.root_path_of}),
                AuthorizeStage(self.policy),
                RateLimitStage(self.limiter),
            ],
            endpoint=self.calls.wrap(run_tool),
        )
        self.mcp = build_mcp_server(self, self.chain)
        self.session_manager = ScopedSessionManager(
            self.mcp._lowlevel_server,
            event_store_limits=self.event_store_limits(),
            on_session_end=self.peers.end_session,
            max_sessions_per_principal=self.max_sessions_per_principal,
            max_request_body_size=self.max_request_body_bytes,
            session_idle_timeout=self.session_idle_timeout,
        )
        self.runner = ManagerRunner(self.session_manager, self.log)

    def initialize_handlers(self) -> None:
        # ExtensionApp prefixes base_url onto these patterns.
        self.handlers.extend(
            [
                (r"/mcp/?", MCPHandler, {"collab": self}),
                (url_path_join("/", METADATA_PATH), ProtectedResourceMetadataHandler, {"collab": self}),
            ]
        )

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        stop_on_sigint(serverapp, self.log)
        release_worker_threads_at_exit()
        self.calls.start()
        await self.audit.start()
        await self.policy.start()
        self.runner.start()
        await self.runner.wait_ready()
        self.log.info("MCP endpoint ready at %s", url_path_join(serverapp.connection_url, "mcp"))

    async def stop_extension(self) -> None:
        await self.calls.stop()
        await self.runner.stop()
        await self.peers.close()
        await self.forks.close()
        await self.executions.close()
        await self.rtc.close()
        await self.attribution.close()
        await self.policy.stop()
        await self.limiter.close()
        await self.audit.close()

    async def record_auth_failure(self, remote_ip: str, reason: str, method: str | None) -> None:
        # A flood of 401s from one address must not flood the audit trail.
        if await self.limiter.allow_auth_failure_record(remote_ip):
            self.audit.auth_failure(remote_ip=remote_ip, reason=reason, auth=method)

    def authorization_server_urls(self, own_origin: str) -> list[str]:
        if self.authorization_servers:
            return list(self.authorization_servers)
        if self.jwt_issuer:
            return [self.jwt_issuer]
        hub_url = os.environ.get("JUPYTERHUB_PUBLIC_HUB_URL") or _hub_url_from_env()
        if hub_url:
            return [hub_url]
        return [own_origin + self.serverapp.base_url]

    def _refuse_served_trusted_files(self, files: list[tuple[str, Path]]) -> None:
        try:
            refuse_served_trusted_files(files, self.root, self.serverapp.contents_manager.allow_hidden)
        except ServedTrustedFile as refusal:
            # Jupyter would log a failed extension and serve on without it; a server that must not run stops.
            self.log.critical("refusing to start: %s", refusal)
            raise SystemExit(1) from None

    def _audit_files(self) -> list[tuple[str, Path]]:
        files = [("CollabMCP.audit_digest_key_file", Path(self.audit.digest_key_file))]
        head_file = getattr(self.audit.sink, "head_file", None)
        if head_file is not None:
            files.append(("the audit chain-head file", Path(head_file)))
        return files

    def _trusted_files(self) -> list[tuple[str, Path]]:
        files = [
            ("CollabMCP.policy_file", Path(self.policy_file)),
            ("CollabMCP.policy_model", Path(self.policy_model)),
            ("CollabMCP.state_dir", Path(self.state_dir)),
            ("CollabMCP.jwt_secret_file", Path(self.jwt_secret_file)),
            ("CollabMCP.jwt_key_file", Path(self.jwt_key_file)),
        ]
        return [(name, path) for name, path in files if str(path) not in ("", ".")]

    def _jwt_verifier(self) -> JWTVerifier | None:
        if not (self.jwt_audience and (self.jwt_secret_file or self.jwt_key_file)):
            return None
        return JWTVerifier(
            audience=self.jwt_audience,
            algorithms=self.jwt_algorithms,
            secret_file=self.jwt_secret_file,
            key_file=self.jwt_key_file,
            issuer=self.jwt_issuer,
            user_claim=self.jwt_user_claim,
            groups_claim="" if self.jwt_ignore_groups else self.jwt_groups_claim,
            agent_claims=self.jwt_agent_claims,
            owner=self.owner,
            leeway=self.jwt_leeway,
        )


def _hub_url_from_env() -> str | None:
    host = os.environ.get("JUPYTERHUB_HOST", "")
    prefix = os.environ.get("JUPYTERHUB_BASE_URL")
    if prefix is None or not os.environ.get("JUPYTERHUB_API_URL"):
        return None
    return f"{host}{url_path_join(prefix, 'hub/')}"
