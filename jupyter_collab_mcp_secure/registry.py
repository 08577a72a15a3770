"""The tool registry: one table saying, for every tool, what it needs.

Read it like JupyterHub's scopes table: permissions as documented data. The
resolve stage reads `path_args` and `RESOLVED_ARGS` to find every document a call
touches; the authorize stage checks `action` on each; the rate-limit stage
charges `cost` against the principal's budget for that action.
"""

from __future__ import annotations

from dataclasses import dataclass

READ, WRITE, EXECUTE, ADMIN = "read", "write", "execute", "admin"
ACTIONS = (READ, WRITE, EXECUTE, ADMIN)


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
    ToolSpec("list_notebooks", "notebooks", READ, _P, filtered=True),
    ToolSpec("get_notebook", "notebooks", READ, _P),
    ToolSpec("create_notebook_session", "notebooks", READ, _P),
    ToolSpec("update_notebook_cell", "notebooks", WRITE, _P),
    ToolSpec("insert_notebook_cell", "notebooks", WRITE, _P),
    ToolSpec("delete_notebook_cell", "notebooks", WRITE, _P),
    ToolSpec("execute_notebook_cell", "notebooks", EXECUTE, _P),
    # documents
    ToolSpec("list_documents", "documents", READ, _P, filtered=True),
    ToolSpec("get_document", "documents", READ, _P),
    ToolSpec("create_document_session", "documents", READ, _P),
    ToolSpec("update_document", "documents", WRITE, _P),
    ToolSpec("insert_text", "documents", WRITE, _P),
    ToolSpec("delete_text", "documents", WRITE, _P),
    ToolSpec("get_document_history", "documents", READ, _P),
    ToolSpec("restore_document_version", "documents", WRITE, _P),
    ToolSpec("fork_document", "documents", ADMIN, _P),
    ToolSpec("merge_document_fork", "documents", ADMIN, _P),
    # awareness
    ToolSpec("get_online_users", "awareness", READ, _D, filtered=True),
    ToolSpec("get_user_presence", "awareness", READ, _D, filtered=True),
    ToolSpec("set_user_presence", "awareness", None),
    ToolSpec("get_user_cursors", "awareness", READ, _D),
    ToolSpec("update_cursor_position", "awareness", READ, _D),
    ToolSpec("get_user_activity", "awareness", READ, _D, filtered=True),
    ToolSpec("broadcast_user_activity", "awareness", READ, _D),
    ToolSpec("get_active_sessions", "awareness", READ, _D, filtered=True),
    ToolSpec("join_session", "awareness", READ),
    ToolSpec("leave_session", "awareness", READ),
)

BY_NAME: dict[str, ToolSpec] = {spec.name: spec for spec in TOOLS}
