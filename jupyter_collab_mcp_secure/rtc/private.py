"""Private files for the extension's state: every edit of every document passes through them.

The history store and the attribution database are created 0600 in a 0700 folder,
like the audit file. SQLite gives its journal and WAL files the database file's
mode, so creating the database file first (empty, which SQLite accepts as a new
database) is enough.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


def private_file(path: Path) -> Path:
    """`path`, created empty or tightened to 0600, in a folder created or tightened to 0700."""
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    _tighten_folder(folder)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    return path


def _tighten_folder(folder: Path) -> None:
    # A folder from an older version (0755) is tightened, but never a shared one such as
    # /tmp (sticky) or the home folder a misconfigured state_dir may point at.
    info = folder.stat()
    if info.st_uid != os.geteuid() or info.st_mode & stat.S_ISVTX or folder.resolve() == Path.home().resolve():
        return
    if stat.S_IMODE(info.st_mode) & 0o077:
        os.chmod(folder, 0o700)
