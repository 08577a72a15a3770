"""Every route the Jupyter server serves, decided by the policy at one choke point.

Handlers that call `@authorized` themselves are not enough: JupyterLab's settings,
workspaces and extension manager never do, and third-party extensions may not. So
with the server-wide Authorizer every request passes `RouteGate` before its handler
runs (a wrapper around the tornado application's handler dispatch). A request is
known when its path (below base_url) matches a row of ROUTES *and* the handler the
router chose is one of that row's classes; the row names the resource, and the
Authorizer turns resource + method into the action and the path it needs, exactly
as for its own `is_authorized`. Anything else is an unknown route: `admin` on the
root (the owner keeps third-party extensions, nobody else reaches them by default).

Resources without a principal: PUBLIC routes need none (static assets, the login
page, the MCP endpoint with its own gateway); PAGE routes let their handler send
an anonymous browser to the login page. Any other route refuses a request without
an identity with 403.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from tornado import web

from ..upstream import handler_finished, jupyter_user

log = logging.getLogger(__name__)

PUBLIC = "public"
PAGE = "page"
UNKNOWN = "unknown route"
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_JS = "jupyter_server."
_YDOC = "jupyter_server_ydoc.handlers."
_LAB = "jupyterlab.handlers."
_LABS = "jupyterlab_server."
_STATIC = (f"{_JS}base.handlers.FileFindHandler",)
_PATH = r"(?:/[^/]+)*/?"


@dataclass(frozen=True)
class Route:
    pattern: str  # full match on the URL path below base_url, without its leading '/'
    handlers: tuple[str, ...]  # module.Class of the handlers this row is about
    resource: str  # a resource of the Authorizer, PUBLIC or PAGE
    what: str  # for docs/policies.md


ROUTES: tuple[Route, ...] = (
    # Served by this extension: the MCP endpoint runs its own gateway on every call.
    Route(r"mcp/?", ("jupyter_collab_mcp_secure.transport.handlers.MCPHandler",), PUBLIC, "MCP (own gateway)"),
    Route(
        r"\.well-known/(?:oauth-authorization-server|openid-configuration)(?:/.*)?"
        r"|mcp/\.well-known/(?:oauth-authorization-server|openid-configuration)|register",
        ("jupyter_collab_mcp_secure.transport.handlers.OAuthFallbackHandler",),
        PUBLIC,
        "OAuth discovery and registration: a JSON error telling the client to use a token",
    ),
    Route(
        r"\.well-known/oauth-protected-resource/mcp",
        ("jupyter_collab_mcp_secure.transport.handlers.ProtectedResourceMetadataHandler",),
        PUBLIC,
        "RFC 9728 metadata",
    ),
    # Documents by path: read for GET, write otherwise (copy: read on the source; rename: write on the target).
    Route(
        rf"api/contents{_PATH}",
        (
            f"{_JS}services.contents.handlers.ContentsHandler",
            f"{_JS}services.contents.handlers.CheckpointsHandler",
            f"{_JS}services.contents.handlers.ModifyCheckpointsHandler",
            f"{_JS}services.contents.handlers.TrustNotebooksHandler",
        ),
        "contents",
        "contents, checkpoints, trust: on the path",
    ),
    Route(r"api/notebooks(?:/.*)?", (f"{_JS}services.contents.handlers.NotebooksRedirectHandler",), PAGE, "redirect"),
    Route(r"files/.*", (f"{_JS}base.handlers.AuthenticatedFileHandler",), "files", "raw files: read on the path"),
    Route(rf"view{_PATH}", (f"{_JS}view.handlers.ViewHandler",), "files", "file viewer: read on the path"),
    Route(r"nbconvert/\w+", (f"{_JS}nbconvert.handlers.NbconvertPostHandler",), "nbconvert_post", "read on the root"),
    Route(
        rf"nbconvert/\w+{_PATH}", (f"{_JS}nbconvert.handlers.NbconvertFileHandler",), "nbconvert", "read on the path"
    ),
    Route(
        r"api/nbconvert",
        (f"{_JS}services.nbconvert.handlers.NbconvertRootHandler",),
        "api",
        "any authenticated principal may read",
    ),
    Route(
        r"api/fileid/(?:id|path)",
        ("jupyter_server_fileid.handler.FileIDHandler", "jupyter_server_fileid.handler.FilePathHandler"),
        "fileid",
        "read on the path named (by path, or by the id's current path)",
    ),
    Route(r"api/resolvePath", (f"{_JS}services.api.handlers.PathResolverHandler",), "resolve_path", "read on the root"),
    # Collaboration: rooms and sessions on their document (see the Authorizer).
    Route(r"api/collaboration/room/.*", (f"{_YDOC}YDocWebSocketHandler",), "contents", "read on the room's document"),
    Route(r"api/collaboration/session/.*", (f"{_YDOC}DocSessionHandler",), "contents", "read on the path"),
    Route(r"api/collaboration/timeline/.*", (f"{_YDOC}TimelineHandler",), "contents", "read on the path"),
    Route(r"api/collaboration/undo_redo/.*", (f"{_YDOC}UndoRedoHandler",), "contents", "write on the document"),
    Route(
        r"api/collaboration/fork/.*", (f"{_YDOC}DocForkHandler",), "contents", "GET read, else admin, on the root doc"
    ),
    # Code execution: execute on the root.
    Route(
        r"api/kernels(?:/[\w-]+(?:/(?:restart|interrupt|channels))?)?",
        (
            f"{_JS}services.kernels.handlers.MainKernelHandler",
            f"{_JS}services.kernels.handlers.KernelHandler",
            f"{_JS}services.kernels.handlers.KernelActionHandler",
            f"{_JS}services.kernels.websocket.KernelWebsocketHandler",
        ),
        "kernels",
        "execute on the root",
    ),
    Route(
        r"api/sessions(?:/[\w-]+)?",
        (f"{_JS}services.sessions.handlers.SessionRootHandler", f"{_JS}services.sessions.handlers.SessionHandler"),
        "sessions",
        "execute on the root",
    ),
    Route(
        r"api/terminals(?:/\w+)?|terminals/websocket/\w+",
        (
            "jupyter_server_terminals.api_handlers.TerminalRootHandler",
            "jupyter_server_terminals.api_handlers.TerminalHandler",
            "jupyter_server_terminals.handlers.TermSocket",
        ),
        "terminals",
        "execute on the root",
    ),
    # A language server reads (and some run) anything the server user can: like a kernel.
    Route(r"lsp/ws/.*", ("jupyter_lsp.handlers.LanguageServerWebSocketHandler",), "lsp_ws", "execute on the root"),
    Route(r"lsp/status", ("jupyter_lsp.handlers.LanguageServersHandler",), "lsp", "read on the root"),
    Route(
        r"api/kernelspecs(?:/.+)?|kernelspecs/.+",
        (
            f"{_JS}services.kernelspecs.handlers.MainKernelSpecHandler",
            f"{_JS}services.kernelspecs.handlers.KernelSpecHandler",
            f"{_JS}kernelspecs.handlers.KernelSpecResourceHandler",
        ),
        "kernelspecs",
        "read on the root",
    ),
    # JupyterLab's server state is the owner's: reading it needs read on the root, changing it admin.
    Route(
        r"lab/api/settings(?:/.*)?",
        (f"{_LABS}settings_handler.SettingsHandler",),
        "lab_settings",
        "GET read, else admin",
    ),
    Route(
        r"lab/api/workspaces(?:/.*)?",
        (f"{_LABS}workspaces_handler.WorkspacesHandler",),
        "lab_workspaces",
        "GET read, else admin, on the root",
    ),
    Route(
        r"lab/api/(?:extensions|plugins|build)",
        (
            f"{_LAB}extension_manager_handler.ExtensionHandler",
            f"{_LAB}plugin_manager_handler.PluginHandler",
            f"{_LAB}build_handler.BuildHandler",
        ),
        "lab_extensions",
        "GET read, else admin, on the root (installing is running code)",
    ),
    Route(
        r"lab/api/(?:translations|listings|themes|licenses)(?:/.*)?|lab/api/(?:news|update)",
        (
            f"{_LABS}translations_handler.TranslationsHandler",
            f"{_LABS}listings_handler.ListingsHandler",
            f"{_LABS}themes_handler.ThemesHandler",
            f"{_LABS}licenses_handler.LicensesHandler",
            f"{_LAB}announcements.NewsHandler",
            f"{_LAB}announcements.CheckForUpdateHandler",
        ),
        "api",
        "any authenticated principal may read",
    ),
    # Server-wide: identity and status for anyone signed in; events, shutdown and metrics for admins.
    Route(
        r"api/(?:status|me|spec\.yaml)",
        (
            f"{_JS}services.api.handlers.APIStatusHandler",
            f"{_JS}services.api.handlers.IdentityHandler",
            f"{_JS}services.api.handlers.APISpecHandler",
        ),
        "api",
        "any authenticated principal may read",
    ),
    Route(r"api/config/\w+", (f"{_JS}services.config.handlers.ConfigHandler",), "config", "GET any, else admin"),
    Route(r"api/security/csp-report", (f"{_JS}services.security.handlers.CSPReportHandler",), "csp", "authenticated"),
    Route(
        r"api/events(?:/subscribe)?",
        (f"{_JS}services.events.handlers.EventHandler", f"{_JS}services.events.handlers.SubscribeWebsocket"),
        "events",
        "admin on the root",
    ),
    Route(r"api/shutdown", (f"{_JS}services.shutdown.ShutdownHandler",), "server", "admin on the root"),
    Route(r"metrics", (f"{_JS}base.handlers.PrometheusMetricsHandler",), "server", "admin on the root"),
    # Pages: an anonymous browser is sent to the login page by the handler itself.
    Route(
        r"(?:lab|doc)(?:/.*)?",
        ("jupyterlab_server.handlers.LabHandler", "jupyterlab_server.handlers.NotFoundHandler"),
        PAGE,
        "the JupyterLab page",
    ),
    Route(r"", (f"{_JS}base.handlers.MainHandler",), PAGE, "redirect to the default page"),
    Route(r".*/", (f"{_JS}base.handlers.TrailingSlashHandler",), PAGE, "redirect"),
    # Public: no identity needed.
    Route(r"static/.*|lab/extensions/.*|static/lab/.*", _STATIC, PUBLIC, "static assets"),
    Route(
        r"robots\.txt|favicon\.ico",
        (*_STATIC, f"{_JS}base.handlers.PublicStaticFileHandler"),
        PUBLIC,
        "static assets",
    ),
    Route(r"api", (f"{_JS}base.handlers.APIVersionHandler",), PUBLIC, "server version"),
    Route(
        r"login|logout|oauth_callback",
        (
            f"{_JS}auth.login.LoginFormHandler",
            f"{_JS}auth.logout.LogoutHandler",
            "jupyterhub.singleuser.extension.JupyterHubLogoutHandler",
            "jupyterhub.singleuser.extension.JupyterHubOAuthCallbackHandler",
        ),
        PUBLIC,
        "sign in and out",
    ),
    Route(r".*", (f"{_JS}base.handlers.Template404",), PUBLIC, "the not-found page"),
)


def route_table_markdown() -> str:
    """The route table as a Markdown table, for docs/policies.md."""
    lines = ["| route (below base_url) | resource | needs |", "|---|---|---|"]
    for route in ROUTES:
        shown = route.pattern.replace("|", "\\|")
        lines.append(f"| {f'`{shown}`' if shown else '(base_url itself)'} | {route.resource} | {route.what} |")
    lines.append(f"| anything else | {UNKNOWN} | admin on the root |")
    return "\n".join(lines) + "\n"


def class_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def resource_of(relative_path: str, handler_class: type) -> str:
    """The resource a request is about, or UNKNOWN when no row knows this path and handler."""
    name = class_name(handler_class)
    for route in ROUTES:
        if name in route.handlers and re.fullmatch(route.pattern, relative_path):
            return route.resource
    return UNKNOWN


Decide = Callable[[Any, str, str], Awaitable[bool]]


class RouteGate:
    """Wraps the tornado application's handler dispatch so every handler is decided first."""

    def __init__(self, base_url: str, decide: Decide) -> None:
        self.base_url = "/" + base_url.strip("/") + "/" if base_url.strip("/") else "/"
        # (handler, jupyter action "read"/"write", resource) -> allowed
        self.decide = decide

    def install(self, web_app: web.Application) -> None:
        dispatch = web_app.get_handler_delegate
        gate = self

        def get_handler_delegate(request: Any, target_class: type, *args: Any, **kwargs: Any) -> Any:
            delegate = dispatch(request, target_class, *args, **kwargs)
            delegate.handler_class = lambda app, req, **options: gate.guard(target_class(app, req, **options))
            return delegate

        web_app.get_handler_delegate = get_handler_delegate

    def relative(self, path: str) -> str | None:
        if path + "/" == self.base_url:
            return ""
        if not path.startswith(self.base_url):
            return None
        return path[len(self.base_url) :]

    def guard(self, handler: web.RequestHandler) -> web.RequestHandler:
        prepare = handler.prepare
        gate = self

        async def gated_prepare(*args: Any, **kwargs: Any) -> None:
            result = prepare(*args, **kwargs)
            if result is not None:
                await result
            if handler_finished(handler):
                return
            if not await gate.allows(handler):
                raise web.HTTPError(403)

        handler.prepare = gated_prepare
        return handler

    async def allows(self, handler: web.RequestHandler) -> bool:
        relative = self.relative(handler.request.path)
        resource = UNKNOWN if relative is None else resource_of(relative, type(handler))
        if resource == PUBLIC:
            return True
        if handler.request.method == "OPTIONS" and resource != UNKNOWN:
            # A CORS preflight carries no credentials and known handlers answer it with headers only.
            return True
        # Jupyter handlers resolved the identity in prepare(); others only have tornado's own.
        user = jupyter_user(handler)
        if user is None:
            # Pages send an anonymous browser to log in; nothing else is served without an identity.
            return resource == PAGE
        if resource == PAGE:
            return True
        action = "read" if handler.request.method in READ_METHODS else "write"
        allowed = await self.decide(handler, action, resource)
        if not allowed:
            log.info("refused %s %s (%s)", handler.request.method, class_name(type(handler)), resource)
        return allowed
