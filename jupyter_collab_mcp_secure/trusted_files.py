"""The files this extension trusts must never be reachable through Jupyter's own file API.

Whatever lies in the served root at a path Jupyter serves can be rewritten over
/api/contents, the RTC websocket and MCP's own write tools by anyone with write
somewhere: a policy file there would turn write into admin. Hidden paths are not
served unless `ContentsManager.allow_hidden` is on.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


class ServedTrustedFile(ValueError):
    """A trusted file lies at a served path; the message says which and where to put it."""


def served_path(path: Path, root: Path, allow_hidden: bool) -> str | None:
    """The path relative to the root when Jupyter serves it (symlinks resolved), else None."""
    resolved = path.expanduser().resolve()
    if resolved != root and root not in resolved.parents:
        return None
    relative = resolved.relative_to(root)
    if not allow_hidden and any(part.startswith(".") for part in relative.parts):
        return None
    return relative.as_posix() or "."


def refuse_served_trusted_files(files: Iterable[tuple[str, Path]], root: Path, allow_hidden: bool) -> None:
    """Raise ServedTrustedFile for the first (setting, path) Jupyter would serve under `root`."""
    root = root.expanduser().resolve()
    for setting, path in files:
        relative = served_path(path, root, allow_hidden)
        if relative is not None:
            hidden = "" if allow_hidden else " or in a hidden folder such as ~/.local/share/jupyter"
            raise ServedTrustedFile(
                f"{setting} ({path}) lies in the served root at {relative!r}: anyone who may write "
                f"there could rewrite it through Jupyter or MCP. Put it outside {root} (for example "
                f"under /etc/jupyter/){hidden}."
            )
