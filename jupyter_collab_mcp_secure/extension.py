"""CollabMCP: the Jupyter Server extension that serves MCP at {base_url}mcp behind the gateway."""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import Any

from jupyter_server.extension.application import ExtensionApp
from jupyter_server.utils import url_path_join
from traitlets import Bool, Float, Int, List, TraitError, Unicode, default, validate

from .audit.config import AuditConfig
from .config_ranges import not_negative, positive
from .gateway.chain import Chain
from .gateway.stages.audit import AuditStage, ExecutionStartStage
from .gateway.stages.authorize import AuthorizeStage
from .gateway.stages.identity import IdentityStage
from .gateway.stages.ratelimit import RateLimitStage
from .gateway.stages.resolve import ResolveStage
from .gateway.stages.size import ArgumentSizeStage
from .hub import HubConfig, under_jupyterhub
from .identity.authenticate import Authenticator
from .identity.jwt_verifier import JWTVerifier
from .lifecycle import CallsInFlight, freeze_startup_heap, release_worker_threads_at_exit, stop_on_sigint
from .path_templates import expand_path_traits
from .policy.authorizer import install_server_authorizer
from .policy.config import PolicyConfig
from .policy.tool_paths import check_tool_paths
from .ratelimit.config import RateLimitConfig
from .registry import TOOLS
from .rtc.activity import ActivityConfig
from .rtc.adapter import RTCAdapter
from .rtc.attribution import AttributionLog
from .rtc.cell_runs import CellRuns
from .rtc.execution import Executions
from .rtc.forks import ForkRegistry
from .rtc.history import HistoryConfig
from .rtc.history_reader import HistoryReader
from .rtc.moves import MoveLog
from .rtc.peers import AgentPeers
from .rtc.services import Limits, Services
from .rtc.ystore import install_ystore
from .server import build_mcp_server, run_tool, tool_function
from .state_dir import default_state_dir
from .transport.handlers import (
    METADATA_PATH,
    OAUTH_FALLBACK_PATTERNS,
    MCPHandler,
    OAuthFallbackHandler,
    ProtectedResourceMetadataHandler,
    absolute_url,
    standalone,
)
from .transport.session_manager import (
    ManagerRunner,
    ScopedSessionManager,
    SessionConfig,
)
from .trusted_files import ServedTrustedFile, refuse_served_trusted_files
from .upstream import lowlevel_server


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
            "OAuth authorization servers (absolute https:// or http:// URLs) advertised in the RFC 9728 "
            "metadata: only servers that really issue tokens this server accepts. Default: the JWT issuer "
            "when it is an absolute URL, else none (never this server, never JupyterHub, which issues no "
            "OAuth tokens to MCP clients)."
        ),
    ).tag(config=True)

    @validate("authorization_servers")
    def _absolute_authorization_servers(self, proposal: Any) -> list[str]:
        for url in proposal["value"]:
            if not absolute_url(url):
                raise TraitError(f"authorization_servers: {url!r} is not an absolute http(s) URL")
        return proposal["value"]

    jwt_secret_file = Unicode(
        "", help="File holding the HMAC secret for HS256/384/512 JWTs (read again when it changes)."
    ).tag(config=True)
    jwt_key_file = Unicode(
        "",
        help=(
            "File holding the public key for RS*/PS*/ES*/EdDSA JWTs: a PEM public key, a JWK or a JWKS (JSON). "
            "Read again when it changes, so keys rotate without a restart. A single key without a key id "
            "verifies tokens whatever `kid` they carry."
        ),
    ).tag(config=True)
    jwt_jwks_url = Unicode(
        "",
        help=(
            "URL of the identity provider's JWKS (its `jwks_uri`), for RS*/PS*/ES*/EdDSA JWTs; may be combined "
            "with jwt_key_file. Fetched on first use, cached (jwt_jwks_cache_seconds) and fetched again when a "
            "token names an unknown key id (at most every jwt_jwks_refetch_seconds)."
        ),
    ).tag(config=True)
    jwt_jwks_cache_seconds = Float(
        300, help="Seconds the keys fetched from jwt_jwks_url are used before a refetch."
    ).tag(config=True)
    jwt_jwks_refetch_seconds = Float(
        30,
        help=(
            "Least seconds between two fetches of jwt_jwks_url caused by tokens naming an unknown key id "
            "(made-up key ids must not make the server hammer the provider)."
        ),
    ).tag(config=True)
    jwt_algorithms = List(
        Unicode(),
        default_value=["RS256", "ES256"],
        help="JWT algorithms accepted (allow-list; 'none' is never accepted).",
    ).tag(config=True)
    jwt_audience = Unicode(
        "", help="Required `aud` of JWTs. JWT authentication is off unless a key and an audience are set."
    ).tag(config=True)
    jwt_issuer = Unicode(
        "",
        help=(
            "Required `iss` of JWTs (checked when set). Unset, any issuer whose tokens verify with the keys is "
            "accepted, and no JWT identity is the owner (providers share signing keys across tenants, so a "
            "token naming the owner proves nothing without the issuer); a warning is logged at startup."
        ),
    ).tag(config=True)
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
    listing_max_entries = Int(
        20_000,
        help=(
            "Files and folders list_notebooks and list_documents examine per call (hidden and checkpoint "
            "folders are never entered); past it the result says `truncated: true` (narrow it with `path`)."
        ),
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
        300,
        help=(
            "Seconds after which an idle MCP session (initialize-handshake era: no request in flight, no open "
            "GET stream) is closed. One-shot clients (the MCP Inspector CLI, mcp-remote, scripts) never end "
            "their sessions; 5 minutes frees them soon, while a connected client keeps its GET stream open and "
            "is never idle. A client whose session expired gets 404 and opens a new one."
        ),
    ).tag(config=True)

    state_dir = Unicode(
        help=(
            "Folder for this extension's own state: edit attribution, moves, history store, and by default the "
            "audit trail and its digest key (in <state_dir>/audit/, unless audit_log or audit_digest_key_file "
            "say otherwise). Keep it outside the served root, or deny it in the policy. "
            "Default: <jupyter data dir>/collab_mcp_secure."
        ),
    ).tag(config=True)

    @default("state_dir")
    def _default_state_dir(self) -> str:
        return str(default_state_dir())

    agent_idle_timeout = Float(
        120,
        help=(
            "Seconds after its last call that touched a document (edit, execution, cursor, join, "
            "presence, broadcast) that an agent stops showing as a collaborator, even while its MCP session "
            "stays open (one-shot clients never close theirs). 2 minutes covers an agent thinking between "
            "calls, and an abandoned agent's cursor does not linger; it leaves within seconds of its last "
            "session ending, and shows again with its next call."
        ),
    ).tag(config=True)
    execution_timeout_max = Float(
        3600, help="Largest `timeout` (seconds) execute_notebook_cell accepts; larger values are reduced to it."
    ).tag(config=True)
    fork_ttl = Float(3600, help="Seconds after which a fork that was never merged is dropped and its room closed.").tag(
        config=True
    )

    _collab_positive = positive(
        "output_max_chars",
        "listing_max_entries",
        "document_read_max_chars",
        "max_request_body_bytes",
        "session_idle_timeout",
        "agent_idle_timeout",
        "execution_timeout_max",
        "fork_ttl",
    )
    _collab_not_negative = not_negative(
        "jwt_jwks_cache_seconds", "jwt_jwks_refetch_seconds", "jwt_leeway", "room_idle_cleanup_delay"
    )

    @default("policy_authorize_server")
    def _default_policy_authorize_server(self) -> bool:
        # A shared hub server must not leave REST and the RTC websocket open to what MCP refuses.
        return under_jupyterhub()

    def initialize_settings(self) -> None:
        expand_path_traits(self, self.owner)
        self.root = Path(self.serverapp.root_dir).resolve()
        self._refuse_served_trusted_files(self._trusted_files())
        self.apply_hub_token_cache(self.serverapp.identity_provider, self.log)
        # Before anything opens a room: rooms created by the server must share history's store.
        install_ystore(self.serverapp, Path(self.state_dir) / "ystore.sqlite", self.log)
        self.authenticator = Authenticator(owner=self.owner, jwt_verifier=self._jwt_verifier())
        self.audit = self.make_audit_trail(str(self.root), self.log, refusals=self.make_refusal_budget())
        self._refuse_served_trusted_files(self._audit_files())
        self.audit.attach_event_logger(self.serverapp.event_logger)
        self.limiter = self.make_rate_limiter(self.log)
        self.policy = self.make_policy_engine(self.audit, self.log, owner=self.owner)
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
        self.moves = MoveLog(Path(self.state_dir) / "moves.sqlite")
        self.moves.listen(self.serverapp.contents_manager)
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
                AuthorizeStage(self.policy, check_tool_paths(TOOLS, tool_function)),
                RateLimitStage(self.limiter),
                ExecutionStartStage(self.audit),
            ],
            endpoint=self.calls.wrap(run_tool),
        )
        self.mcp = build_mcp_server(self._services(), self.chain)
        self.session_manager = ScopedSessionManager(
            lowlevel_server(self.mcp),
            event_store_limits=self.event_store_limits(),
            on_session_end=self.peers.end_session,
            log=self.log,
            max_sessions_per_principal=self.max_sessions_per_principal,
            max_request_body_size=self.max_request_body_bytes,
            session_idle_timeout=self.session_idle_timeout,
        )
        self.runner = ManagerRunner(self.session_manager, self.log)

    def _services(self) -> Services:
        limits = Limits(
            output_max_chars=self.output_max_chars,
            listing_max_entries=self.listing_max_entries,
            document_read_max_chars=self.document_read_max_chars,
            execution_timeout_max=self.execution_timeout_max,
        )
        return Services(
            root=self.root,
            rtc=self.rtc,
            peers=self.peers,
            forks=self.forks,
            cell_runs=CellRuns(self.rtc, self.executions, self.peers, self.attribution, self.output_max_chars),
            attribution=self.attribution,
            history=HistoryReader(self.rtc, self.attribution, self.moves, self.history_quiet_period),
            audit=self.audit,
            kernel_specs=self.serverapp.kernel_spec_manager,
            limits=limits,
        )

    def initialize_handlers(self) -> None:
        # ExtensionApp prefixes base_url onto these patterns.
        self.handlers.extend(
            [
                (r"/mcp/?", MCPHandler, {"collab": self}),
                (url_path_join("/", METADATA_PATH), ProtectedResourceMetadataHandler, {"collab": self}),
            ]
        )
        if standalone(self.serverapp.base_url):
            self.handlers.extend(
                (pattern, OAuthFallbackHandler, {"collab": self}) for pattern in OAUTH_FALLBACK_PATTERNS
            )

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        stop_on_sigint(serverapp, self.log)
        release_worker_threads_at_exit()
        self.calls.start()
        await self.audit.start()
        await self.policy.start()
        self.runner.start()
        await self.runner.wait_ready()
        freeze_startup_heap()
        self.log.info("MCP endpoint ready at %s", url_path_join(serverapp.connection_url, "mcp"))

    async def stop_extension(self) -> None:
        await self.calls.stop()
        await self.runner.stop()
        await self.peers.close()
        await self.forks.close()
        await self.executions.close()
        await self.rtc.close()
        await self.attribution.close()
        self.moves.close()
        await self.policy.stop()
        await self.limiter.close()
        await self.audit.close()

    async def record_auth_failure(self, remote_ip: str, reason: str, method: str | None) -> None:
        # Past the address's budget (auth_failure_limit) the trail counts 401s instead of writing each.
        self.audit.auth_failure(remote_ip=remote_ip, reason=reason, auth=method)

    def authorization_server_urls(self) -> list[str]:
        """Only servers that issue tokens this server accepts; an empty list is a deliberate answer."""
        if self.authorization_servers:
            return list(self.authorization_servers)
        if self.jwt_verifier_configured and absolute_url(self.jwt_issuer):
            return [self.jwt_issuer]
        return []

    @property
    def jwt_verifier_configured(self) -> bool:
        return bool(self.jwt_audience and (self.jwt_secret_file or self.jwt_key_file or self.jwt_jwks_url))

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
            ("CollabMCP.owner_policy_file", Path(self.owner_policy_file)),
            ("CollabMCP.state_dir", Path(self.state_dir)),
            ("CollabMCP.jwt_secret_file", Path(self.jwt_secret_file)),
            ("CollabMCP.jwt_key_file", Path(self.jwt_key_file)),
        ]
        return [(name, path) for name, path in files if str(path) not in ("", ".")]

    def _jwt_verifier(self) -> JWTVerifier | None:
        if not self.jwt_verifier_configured:
            return None
        if not self.jwt_issuer:
            self.log.warning(
                "JWT authentication without jwt_issuer: tokens of any issuer the keys verify are accepted, "
                "and a JWT naming the owner %r is not treated as the owner; set c.CollabMCP.jwt_issuer",
                self.owner,
            )
        return JWTVerifier(
            audience=self.jwt_audience,
            algorithms=self.jwt_algorithms,
            secret_file=self.jwt_secret_file,
            key_file=self.jwt_key_file,
            jwks_url=self.jwt_jwks_url,
            jwks_cache_seconds=self.jwt_jwks_cache_seconds,
            jwks_refetch_seconds=self.jwt_jwks_refetch_seconds,
            issuer=self.jwt_issuer,
            user_claim=self.jwt_user_claim,
            groups_claim="" if self.jwt_ignore_groups else self.jwt_groups_claim,
            agent_claims=self.jwt_agent_claims,
            owner=self.owner,
            leeway=self.jwt_leeway,
        )
