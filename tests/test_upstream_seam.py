"""upstream.py is the one seam to other packages' private APIs, and each private name it uses still exists.

An upgrade that renames or reshapes one fails here, naming the seam function to revisit and the version it was
verified on. Outside the seam, no module touches a private attribute of another object, imports a private
module, or names any private upstream name the seam uses.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parent.parent / "jupyter_collab_mcp_secure"
SEAM = PACKAGE_DIR / "upstream.py"

YDOC = "jupyter-server-ydoc 3.0.4"
MCP = "mcp 2.3.0"


@dataclass(frozen=True)
class Use:
    seam: str  # what in upstream.py relies on it
    verified: str  # the version it was verified on
    owner: str  # "module:Class", or "module" for a function or a module's own name
    name: str  # the private name (for kind "module": the private module itself)
    kind: str  # "function", "coroutine", "attribute" (of the class or assigned on its instances), "module"
    params: tuple[str, ...] = ()  # for functions: their parameter names; for modules: names they must define


USES = [
    Use("room_loaded", YDOC, "jupyter_server_ydoc.rooms:DocumentRoom", "_document_load_progressively", "attribute"),
    Use("room_loaded", YDOC, "jupyter_server_ydoc.rooms:DocumentRoom", "_document_progressively_loaded", "attribute"),
    Use("save_room_now", YDOC, "jupyter_server_ydoc.rooms:DocumentRoom", "_save_to_disc", "function", ("self",)),
    Use("room_saving", YDOC, "jupyter_server_ydoc.rooms:DocumentRoom", "_saving_document", "attribute"),
    Use("room_lock", YDOC, "jupyter_server_ydoc.app:YDocExtension", "_room_locks", "attribute"),
    Use("websocket_room_id", YDOC, "jupyter_server_ydoc.handlers:YDocWebSocketHandler", "_room_id", "attribute"),
    Use(
        "room_updates_pending",
        "pycrdt-websocket 0.16.5",
        "pycrdt.websocket.yroom:YRoom",
        "_update_send_stream",
        "attribute",
    ),
    Use(
        "YStoreWriteHooks",
        "pycrdt-store 0.1.5",
        "pycrdt.store:SQLiteYStore",
        "_cleanup_if_needed",
        "coroutine",
        ("self",),
    ),
    Use(
        "MemoryStorageHooks",
        "limits 5.8.0",
        "limits.aio.storage:MemoryStorage",
        "_MemoryStorage__schedule_expiry",
        "coroutine",
        ("self",),
    ),
    *(
        Use(
            "SessionManagerHooks",
            MCP,
            "mcp.server.streamable_http_manager:StreamableHTTPSessionManager",
            name,
            "coroutine",
            params,
        )
        for name, params in [
            ("_handle_stateful_request", ("self", "scope", "receive", "send")),
            ("_serve_opening_request", ("self", "http_transport", "scope", "receive", "send")),
            ("_discard_session", ("self", "session_id", "transport")),
        ]
    ),
    Use(
        "SessionManagerHooks",
        MCP,
        "mcp.server.streamable_http_manager:StreamableHTTPSessionManager",
        "_admit_session",
        "function",
        ("self", "requestor"),
    ),
    *(
        Use(
            "SessionManagerHooks",
            MCP,
            "mcp.server.streamable_http_manager:StreamableHTTPSessionManager",
            name,
            "attribute",
        )
        for name in ("_session_owners", "_server_instances", "_task_group")
    ),
    Use(
        "set_event_store", MCP, "mcp.server.streamable_http:StreamableHTTPServerTransport", "_event_store", "attribute"
    ),
    Use(
        "requests_in_flight",
        MCP,
        "mcp.server.streamable_http:StreamableHTTPServerTransport",
        "_requests_in_flight",
        "attribute",
    ),
    Use("lowlevel_server", MCP, "mcp.server.mcpserver.server:MCPServer", "_lowlevel_server", "attribute"),
    Use("handler_finished", "tornado 6.6.1", "tornado.web:RequestHandler", "_finished", "attribute"),
    Use(
        "jupyter_user",
        "jupyter_server 2.21.1",
        "jupyter_server.base.handlers:JupyterHandler",
        "_jupyter_current_user",
        "attribute",
    ),
    Use(
        "stop_server",
        "jupyter_server 2.21.1",
        "jupyter_server.serverapp:ServerApp",
        "_signal_stop",
        "function",
        ("self", "sig", "frame"),
    ),
    Use("before_threads_join", "CPython 3.11", "threading", "_register_atexit", "function", ("func", "arg", "kwargs")),
    Use(
        "stop_idle_anyio_workers",
        "anyio 4.16.0",
        "anyio._backends._asyncio",
        "anyio._backends._asyncio",
        "module",
        ("WorkerThread",),
    ),
]


def _owner(use: Use) -> object:
    module_name, _, class_name = use.owner.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, class_name) if class_name else module


def _problem(use: Use) -> str | None:
    """What no longer matches upstream, or None."""
    owner = _owner(use)
    if use.kind == "module":
        missing = [name for name in use.params if not hasattr(owner, name)]
        return f"{use.name} no longer defines {missing}" if missing else None
    if use.kind == "attribute":
        # Instance attributes exist only once an object is built: upstream's class must still assign them.
        assigned = f"self.{use.name}" in inspect.getsource(owner)  # type: ignore[arg-type]
        return None if hasattr(owner, use.name) or assigned else f"{use.owner} has no attribute {use.name}"
    function = getattr(owner, use.name, None)
    if not callable(function):
        return f"{use.owner}.{use.name} is gone or not callable"
    if use.kind == "coroutine" and not inspect.iscoroutinefunction(function):
        return f"{use.owner}.{use.name} is no longer a coroutine function"
    params = tuple(inspect.signature(function).parameters)
    return None if params == use.params else f"{use.owner}.{use.name} takes {params}, not {use.params}"


@pytest.mark.parametrize("use", USES, ids=lambda use: f"{use.seam}-{use.name}")
def test_each_private_name_the_seam_uses_still_has_its_shape(use: Use) -> None:
    problem = _problem(use)
    assert problem is None, f"upstream.{use.seam} (verified on {use.verified}) needs revisiting: {problem}"


# Hooks the seam overrides are worth nothing if upstream stops calling them: (seam, verified, caller, call it makes).
CALLS = [
    ("YStoreWriteHooks", "pycrdt-store 0.1.5", "pycrdt.store:SQLiteYStore.write", "self._cleanup_if_needed()"),
    ("MemoryStorageHooks", "limits 5.8.0", "limits.aio.storage:MemoryStorage.incr", "self.__schedule_expiry()"),
    *(
        ("SessionManagerHooks", MCP, f"mcp.server.streamable_http_manager:StreamableHTTPSessionManager.{caller}", call)
        for caller, call in [
            ("_handle_request", "self._handle_stateful_request(scope, receive, send)"),
            ("_handle_stateful_request", "self._admit_session(requestor)"),
            ("_handle_stateful_request", "self._serve_opening_request(http_transport, scope, receive, send)"),
            ("_handle_stateful_request", "self._discard_session("),
            ("_serve_opening_request", "self._discard_session("),
        ]
    ),
]


@pytest.mark.parametrize("seam,verified,caller,call", CALLS, ids=lambda value: str(value).rsplit(":", 1)[-1])
def test_upstream_still_calls_the_hooks_the_seam_overrides(seam: str, verified: str, caller: str, call: str) -> None:
    module_name, _, path = caller.partition(":")
    function: object = importlib.import_module(module_name)
    for name in path.split("."):
        function = getattr(function, name)
    assert call in inspect.getsource(function), (  # type: ignore[arg-type]
        f"upstream.{seam} (verified on {verified}) needs revisiting: {caller} no longer calls {call}"
    )


def test_the_ystore_hook_runs_before_the_timestamp_it_bounds() -> None:
    from pycrdt.store import SQLiteYStore

    write = inspect.getsource(SQLiteYStore.write)
    assert write.index("self._cleanup_if_needed()") < write.index("now = time.time()"), (
        "upstream.YStoreWriteHooks (verified on pycrdt-store 0.1.5) needs revisiting: write() takes its "
        "timestamp before the hook"
    )


def test_the_shape_check_sees_a_change() -> None:
    # The shape check sees a change: a method that is not there, a parameter renamed.
    assert _problem(Use("x", "v", "threading", "_register_atexit", "function", ("callback",))) is not None
    assert _problem(Use("x", "v", "tornado.web:RequestHandler", "_no_such_attribute", "attribute")) is not None


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _annotation_nodes(tree: ast.AST) -> set[int]:
    """Nodes inside annotations: they name types for the checker and touch no object at run time."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        annotations = []
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            arguments = node.args
            every = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs, arguments.vararg, arguments.kwarg]
            annotations = [argument.annotation for argument in every if argument is not None] + [node.returns]
        elif isinstance(node, ast.AnnAssign):
            annotations = [node.annotation]
        for annotation in annotations:
            if annotation is not None:
                inside.update(id(child) for child in ast.walk(annotation))
    return inside


def _local_names(tree: ast.Module) -> set[str]:
    """Classes defined in the file or imported from this package (relative imports)."""
    names = {node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            names.update(alias.asname or alias.name for alias in node.names)
    return names


def _upstream_subclasses(tree: ast.Module) -> list[ast.ClassDef]:
    local = _local_names(tree) | {"object", "Exception"}
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
        and any(not (isinstance(base, ast.Name) and base.id in local) for base in node.bases)
    ]


def private_uses(tree: ast.Module, seam_names: set[str]) -> list[tuple[int, str]]:
    """(line, what) for each reach into another object's private attributes or a private module, and for
    each private name of the seam's used outside it (a subclass of an upstream class reaching through self)."""
    skipped = _annotation_nodes(tree)
    inherited = {id(node) for cls in _upstream_subclasses(tree) for node in ast.walk(cls)}
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Attribute) and _private(node.attr):
            base = node.value
            own = isinstance(base, ast.Name) and base.id in ("self", "cls")
            if not own or (node.attr in seam_names and id(node) in inherited):
                found.append((node.lineno, ast.unparse(node)))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in seam_names:
            found.append((node.lineno, f"def {node.name}"))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and len(node.args) >= 2:
            name = node.args[1]
            if node.func.id in ("getattr", "hasattr", "setattr", "delattr") and isinstance(name, ast.Constant):
                if isinstance(name.value, str) and _private(name.value):
                    found.append((node.lineno, ast.unparse(node)))
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, f"import {a.name}") for a in node.names if any(map(_private, a.name.split("."))))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if any(map(_private, node.module.split("."))):
                found.append((node.lineno, f"from {node.module} import ..."))
    return found


def seam_private_names() -> set[str]:
    """Every private name upstream.py uses: attributes, overridden methods, getattr names, private modules."""
    tree = ast.parse(SEAM.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            names.add(node.attr)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _private(node.name):
            names.add(node.name)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _private(node.value):
            names.add(node.value)
        elif isinstance(node, ast.ImportFrom) and node.module and any(map(_private, node.module.split("."))):
            names.add(node.module)
    return names


def test_every_private_name_in_the_seam_is_checked_here() -> None:
    used = seam_private_names()
    listed = {use.name for use in USES}
    assert used - listed == set(), f"upstream.py uses private names this test does not check: {used - listed}"
    assert listed - used == set(), f"checked here but no longer used by upstream.py: {listed - used}"


def test_no_module_outside_the_seam_touches_private_upstream_api() -> None:
    seam_names = {use.name for use in USES}
    found = []
    for file in sorted(PACKAGE_DIR.rglob("*.py")):
        if file == SEAM:
            continue
        tree = ast.parse(file.read_text(encoding="utf-8"))
        found += [
            f"{file.relative_to(PACKAGE_DIR.parent)}:{line}: {what}" for line, what in private_uses(tree, seam_names)
        ]
    assert not found, "private upstream API outside upstream.py (move it behind a seam function):\n" + "\n".join(found)


def test_the_scan_sees_each_kind_of_reach_in() -> None:
    source = (
        "import anyio._backends._asyncio\n"
        "from jupyter_server._tz import utcnow\n"
        "from .local import Base\n"
        "def f(room, self):\n"
        "    room._save_to_disc()\n"
        "    getattr(room, '_saving_document', None)\n"
        "    room.__class__\n"
        "def g(parsers: argparse._SubParsersAction) -> None: ...\n"
        "class Manager(StreamableHTTPSessionManager):\n"
        "    async def _discard_session(self):\n"
        "        super()._admit_session(None)\n"
        "        self._server_instances.get('x')\n"
        "        self._own_state = 1\n"
        "class Own(Base):\n"
        "    def close(self):\n"
        "        self._server_instances = None\n"
    )
    found = [what for _, what in private_uses(ast.parse(source), {"_server_instances", "_discard_session"})]
    assert sorted(found) == [
        "def _discard_session",
        "from jupyter_server._tz import ...",
        "getattr(room, '_saving_document', None)",
        "import anyio._backends._asyncio",
        "room._save_to_disc",
        "self._server_instances",
        "super()._admit_session",
    ]
