"""`{username}` and `{servername}` in path settings, so one hub-wide setting serves every user.

`c.CollabMCP.owner_policy_file = "/srv/policies/{username}.csv"` in the hub's single-user
config gives every server its own file. The placeholders are replaced once, at startup,
before anything opens the files; nothing else in a path is interpreted (other braces stay).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

# Every CollabMCP trait that names a file or folder the extension opens itself.
PATH_TRAITS = (
    "policy_file",
    "owner_policy_file",
    "policy_model",
    "audit_log",
    "audit_digest_key_file",
    "state_dir",
)


def template_values(owner: str, environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """`{username}` is the server's owner, `{servername}` the hub's name for this server ("" for the default one)."""
    return {"username": owner, "servername": environ.get("JUPYTERHUB_SERVER_NAME", "")}


def expand(value: str, values: Mapping[str, str], setting: str = "path") -> str:
    """Replace each `{name}` of `values` in `value`; refuse a replacement that would change the folder structure."""
    for name, replacement in values.items():
        placeholder = "{" + name + "}"
        if placeholder not in value:
            continue
        problem = _unsafe(name, replacement)
        if problem:
            raise ValueError(f"{setting} {value!r}: cannot expand {placeholder}: {problem}")
        value = value.replace(placeholder, replacement)
    return value


def expand_path_traits(app: Any, owner: str, environ: Mapping[str, str] = os.environ) -> None:
    """Expand the placeholders in every path trait `app` has (call once, after configuration is loaded)."""
    values = template_values(owner, environ)
    for name in PATH_TRAITS:
        if not app.has_trait(name):
            continue
        current = getattr(app, name)
        expanded = expand(current, values, setting=name)
        if expanded != current:
            setattr(app, name, expanded)


def _unsafe(name: str, replacement: str) -> str | None:
    # A name is one path segment: '/', '..' or NUL in it would point the server at another user's files.
    if name == "username" and not replacement:
        return "the owner name is empty"
    if any(char in replacement for char in ("/", "\\", "\0")):
        return f"{replacement!r} contains a path separator or NUL"
    if replacement in (".", ".."):
        return f"{replacement!r} is not a name"
    return None
