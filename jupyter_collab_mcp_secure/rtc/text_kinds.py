"""Which files are text documents, and of which kind: by extension, and by sniffing the first bytes."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

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
_SNIFF_BYTES = 8192


def kind_of(path: str) -> str:
    return _KINDS.get(PurePosixPath(path).suffix.lower(), "text")


def is_text_file(file: Path) -> bool:
    if file.suffix.lower() in _BINARY_SUFFIXES:
        return False
    try:
        with file.open("rb") as handle:
            head = handle.read(_SNIFF_BYTES)
    except OSError:
        return False
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as error:
        # A multi-byte character cut by the sniff window is still text.
        truncated = len(head) == _SNIFF_BYTES and error.start >= len(head) - 3
        return truncated and error.reason == "unexpected end of data"
    return True


def require_text(root: Path, path: str) -> None:
    """Refuse a binary file where a text document is expected (a missing file is left to the caller)."""
    file = root / path
    if file.is_file() and not is_text_file(file):
        raise ToolFailure(INVALID_ARGUMENT, f"'{path}' is a binary file, not a text document")
