"""The tool registry: one table saying, for every tool, what it needs.

Read it like JupyterHub's scopes table: permissions as documented data. The
resolve stage reads `path_args` and `RESOLVED_ARGS` to find every document a call
touches; the authorize stage checks `action` on each; the rate-limit stage
charges `cost` against the principal's budget for that action. `title` and
`hints` are what clients are told about each tool (MCP tool annotations).
"""

from __future__ import annotations

from dataclasses import dataclass, field

READ, WRITE, EXECUTE, ADMIN = "read", "write", "execute", "admin"
ACTIONS = (READ, WRITE, EXECUTE, ADMIN)


@dataclass(frozen=True)
class Hints:
    """MCP tool annotations: what a call does to the shared environment (none of it reaches the outside world)."""

    read_only: bool
    # Meaningful only when not read-only: may overwrite or remove what others see (else only adds).
    destructive: bool
    # Repeating the call with the same arguments has no further effect.
    idempotent: bool


READS = Hints(read_only=True, destructive=False, idempotent=True)
# Changes shared state (presence, cursors, sessions) without overwriting anyone's work.
SETS = Hints(read_only=False, destructive=False, idempotent=True)
ADDS = Hints(read_only=False, destructive=False, idempotent=False)
OVERWRITES = Hints(read_only=False, destructive=True, idempotent=True)
DESTROYS = Hints(read_only=False, destructive=True, idempotent=False)


@dataclass(frozen=True)
class ToolSpec:
    name: str
    group: str
    # None: the tool concerns only the caller itself; authentication suffices.
    action: str | None
    # Arguments holding document paths; each is canonicalized and checked.
    path_args: tuple[str, ...] = ()
    # Listings and cross-document tools: their path argument narrows the
    # search instead of naming a document, and results are filtered by read.
    filtered: bool = False
    cost: int = 1
    title: str = field(kw_only=True)
    hints: Hints = field(kw_only=True)

    @property
    def rate_class(self) -> str:
        return self.action or READ


# Arguments that name a document indirectly; the resolve stage maps them to
# the document's path, which is then checked like any path argument.
RESOLVED_ARGS = ("session_id", "fork_id")

_P = ("path",)
_D = ("document_path",)

TOOLS: tuple[ToolSpec, ...] = (
    # notebooks
    ToolSpec("list_notebooks", "notebooks", READ, _P, filtered=True, title="List notebooks", hints=READS),
    ToolSpec("get_notebook", "notebooks", READ, _P, title="Read a notebook", hints=READS),
    ToolSpec("create_notebook_session", "notebooks", READ, _P, title="Open a notebook session", hints=READS),
    ToolSpec("update_notebook_cell", "notebooks", WRITE, _P, title="Replace a cell's source", hints=OVERWRITES),
    ToolSpec("insert_notebook_cell", "notebooks", WRITE, _P, title="Insert a notebook cell", hints=ADDS),
    ToolSpec("delete_notebook_cell", "notebooks", WRITE, _P, title="Delete a notebook cell", hints=OVERWRITES),
    ToolSpec("execute_notebook_cell", "notebooks", EXECUTE, _P, title="Run a notebook cell", hints=DESTROYS),
    # documents
    ToolSpec("list_documents", "documents", READ, _P, filtered=True, title="List text documents", hints=READS),
    ToolSpec("get_document", "documents", READ, _P, title="Read a text document", hints=READS),
    ToolSpec("create_document_session", "documents", READ, _P, title="Open a document session", hints=READS),
    ToolSpec("update_document", "documents", WRITE, _P, title="Replace a document's text", hints=OVERWRITES),
    ToolSpec("insert_text", "documents", WRITE, _P, title="Insert text into a document", hints=ADDS),
    ToolSpec("delete_text", "documents", WRITE, _P, title="Delete text from a document", hints=DESTROYS),
    ToolSpec("get_document_history", "documents", READ, _P, title="List a document's versions", hints=READS),
    ToolSpec("restore_document_version", "documents", WRITE, _P, title="Restore a document version", hints=OVERWRITES),
    ToolSpec("fork_document", "documents", ADMIN, _P, title="Fork a document", hints=ADDS),
    ToolSpec("merge_document_fork", "documents", ADMIN, _P, title="Merge a fork into its document", hints=DESTROYS),
    # awareness
    ToolSpec("get_online_users", "awareness", READ, _D, filtered=True, title="List who is online", hints=READS),
    ToolSpec("get_user_presence", "awareness", READ, _D, filtered=True, title="Read people's presence", hints=READS),
    ToolSpec("set_user_presence", "awareness", None, title="Set the agent's own presence", hints=SETS),
    ToolSpec("get_user_cursors", "awareness", READ, _D, title="Read collaborators' cursors", hints=READS),
    ToolSpec("update_cursor_position", "awareness", READ, _D, title="Move the agent's cursor", hints=SETS),
    ToolSpec("get_user_activity", "awareness", READ, _D, filtered=True, title="Read the activity feed", hints=READS),
    ToolSpec("broadcast_user_activity", "awareness", READ, _D, title="Announce what the agent is doing", hints=ADDS),
    ToolSpec(
        "get_active_sessions", "awareness", READ, _D, filtered=True, title="List collaboration sessions", hints=READS
    ),
    ToolSpec("join_session", "awareness", READ, title="Join a collaboration session", hints=SETS),
    ToolSpec("leave_session", "awareness", READ, title="Leave a collaboration session", hints=SETS),
)

BY_NAME: dict[str, ToolSpec] = {spec.name: spec for spec in TOOLS}
