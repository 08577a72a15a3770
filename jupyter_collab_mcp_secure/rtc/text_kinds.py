"""Which files are text documents, and of which kind: by extension, and by what the contents manager serves."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Any

from jupyter_server.utils import ensure_async
from tornado.web import HTTPError

from ..gateway.errors import INVALID_ARGUMENT, ToolFailure

# Kinds by file extension; anything else that is valid UTF-8 is plain "text".
_KINDS = {
    ".txt": "text", ".text": "text", ".log": "text",
    ".md": "markdown", ".markdown": "markdown",
    ".py": "python", ".pyi": "python",
    ".json": "json", ".geojson": "json",
    ".yaml": "yaml", ".yml": "yaml",
    ".toml": "toml", ".ini": "ini", ".cfg": "ini",
    ".csv": "csv", ".tsv": "csv",
    ".r": "r", ".jl": "julia", ".js": "javascript", ".ts": "typescript",
    ".html": "html", ".htm": "html", ".css": "css", ".xml": "xml", ".svg": "xml",
    ".sh": "shell", ".bash": "shell", ".sql": "sql", ".tex": "latex", ".rst": "rst",
}  # fmt: skip
ANY_TEXT = "file"
FILE_TYPES = frozenset({ANY_TEXT, *_KINDS.values()})
_BINARY_SUFFIXES = frozenset(
    ".png .jpg .jpeg .gif .bmp .ico .webp .pdf .zip .gz .tgz .bz2 .xz .7z .tar .whl .so .dll .dylib "
    ".exe .bin .pyc .pkl .pickle .npy .npz .parquet .feather .h5 .hdf5 .sqlite .db .mp3 .mp4 .wav .avi .mov "
    ".woff .woff2 .ttf .otf .xlsx .docx .pptx".split()
)
# Sniffing reads a whole file through the contents manager (it has no partial read), so a listing
# reads files up to SNIFF_MAX_BYTES and SNIFF_BUDGET_BYTES in all; the name decides the rest.
SNIFF_MAX_BYTES = 1 << 20
SNIFF_BUDGET_BYTES = 64 << 20
# A NUL early in a file marks it binary even when it decodes as UTF-8.
_NUL_WINDOW = 8192
# Reads a listing keeps in flight: enough to overlap a remote manager's latency, few enough to spare it.
_CONCURRENT_SNIFFS = 8


def kind_of(path: str) -> str:
    return _KINDS.get(PurePosixPath(path).suffix.lower(), "text")


def _is_text(model: dict[str, Any]) -> bool:
    """Jupyter serves the file as text (it is UTF-8), and no NUL byte comes early in it."""
    content = model.get("content")
    return model.get("format") == "text" and isinstance(content, str) and "\x00" not in content[:_NUL_WINDOW]


async def require_text(contents: Any, path: str) -> None:
    """Refuse a binary file where a text document is expected.

    A file the contents manager does not serve (missing, hidden, a folder) is left to the caller's checks.
    """
    try:
        await ensure_async(contents.get(path, content=False, type="file"))
        binary = PurePosixPath(path).suffix.lower() in _BINARY_SUFFIXES or not _is_text(
            await ensure_async(contents.get(path, content=True, type="file"))
        )
    except HTTPError:
        return
    if binary:
        raise ToolFailure(INVALID_ARGUMENT, f"'{path}' is a binary file, not a text document")


async def text_files(contents: Any, files: Sequence[tuple[str, int | None]]) -> list[bool]:
    """Which files of a listing, given as (path, size in bytes or None), are text documents.

    Files are read in listing order while the bounds allow, a few at a time; a
    file past them counts as text when its extension names a text kind.
    """
    budget = SNIFF_BUDGET_BYTES
    verdicts: list[bool | None] = []  # None: read it
    for path, size in files:
        suffix = PurePosixPath(path).suffix.lower()
        cost = SNIFF_MAX_BYTES if size is None else size
        if suffix in _BINARY_SUFFIXES:
            verdicts.append(False)
        elif cost <= min(SNIFF_MAX_BYTES, budget):
            budget -= cost
            verdicts.append(None)
        else:
            verdicts.append(suffix in _KINDS)
    gate = asyncio.Semaphore(_CONCURRENT_SNIFFS)

    async def judge(path: str, verdict: bool | None) -> bool:
        if verdict is not None:
            return verdict
        async with gate:
            try:
                return _is_text(await ensure_async(contents.get(path, content=True, type="file")))
            except HTTPError:
                return False  # gone since the walk

    return list(
        await asyncio.gather(*(judge(path, verdict) for (path, _), verdict in zip(files, verdicts, strict=True)))
    )
