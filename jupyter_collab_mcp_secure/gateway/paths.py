"""Canonical document paths: the only form any policy, tool or log ever sees."""

from __future__ import annotations

import re
from pathlib import Path

from .errors import INVALID_ARGUMENT, ToolFailure

_DRIVE = re.compile(r"^[A-Za-z]:")
MAX_PATH_CHARS = 4096
# The operating system's limits (Linux NAME_MAX and PATH_MAX, in bytes): past them every file call fails.
MAX_NAME_BYTES = 255
MAX_RESOLVED_BYTES = 4095


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
    if any(len(part.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES for part in parts):
        raise ToolFailure(INVALID_ARGUMENT, f"a name in '{argument}' is longer than {MAX_NAME_BYTES} bytes")
    # Resolving follows symlinks, so a link inside the root that points out of it is caught here.
    try:
        resolved = root.joinpath(*parts).resolve()
    except (OSError, RuntimeError):  # a symlink loop
        raise ToolFailure(INVALID_ARGUMENT, f"'{argument}' cannot be resolved (a link loop?)") from None
    if len(str(resolved).encode("utf-8", "surrogatepass")) > MAX_RESOLVED_BYTES:
        raise ToolFailure(INVALID_ARGUMENT, f"'{argument}' is too long for this server's file system")
    try:
        relative = resolved.relative_to(root)
    except ValueError:
        raise ToolFailure(INVALID_ARGUMENT, f"'{argument}' resolves outside the server root") from None
    return relative.as_posix() if relative.parts else ""
