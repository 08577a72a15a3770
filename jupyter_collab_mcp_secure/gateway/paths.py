"""Canonical document paths: the only form any policy, tool or log ever sees."""

from __future__ import annotations

import re
from pathlib import Path

from .errors import INVALID_ARGUMENT, ToolFailure

_DRIVE = re.compile(r"^[A-Za-z]:")
MAX_PATH_CHARS = 4096


def canonicalize(raw: object, root: Path, *, argument: str = "path") -> str:
    """Return `raw` relative to the server root, POSIX, symlinks resolved, or refuse.

    `root` must already be resolved. The root itself is "".
    """
    if not isinstance(raw, str):
        raise ToolFailure(INVALID_ARGUMENT, f"'{argument}' must be a string")
    if len(raw) > MAX_PATH_CHARS:
        raise ToolFailure(INVALID_ARGUMENT, f"'{argument}' is longer than {MAX_PATH_CHARS} characters")
    if "\x00" in raw:
        raise ToolFailure(INVALID_ARGUMENT, f"'{argument}' contains a NUL byte")
    if "\\" in raw:
        raise ToolFailure(INVALID_ARGUMENT, f"'{argument}' must use '/' as separator")
    if raw.startswith("/") or raw.startswith("~") or _DRIVE.match(raw):
        raise ToolFailure(INVALID_ARGUMENT, f"'{argument}' must be relative to the server root")
    parts = [part for part in raw.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise ToolFailure(INVALID_ARGUMENT, f"'{argument}' must not contain '..'")
    # Resolving follows symlinks, so a link inside the root that points out of it is caught here.
    resolved = root.joinpath(*parts).resolve()
    try:
        relative = resolved.relative_to(root)
    except ValueError:
        raise ToolFailure(INVALID_ARGUMENT, f"'{argument}' resolves outside the server root") from None
    return relative.as_posix() if relative.parts else ""
