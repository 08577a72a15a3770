"""Where audit lines go: an append-only file (rotated by size) or a stream such as stdout.

A sink only moves bytes; the trail decides what to write and keeps the chain. On
opening, a sink reports the chain head it resumes from, so the chain continues
across restarts: a file reads it from its last line, a stream from a head file
beside the digest key (a stream cannot be read back).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

# Lines are read back in chunks of this size, from the end, to find the chain head.
TAIL_CHUNK = 1 << 16
# Longer lines are not parsed when looking for the head (the trail writes at most 32 KiB).
MAX_LINE_BYTES = 1 << 20


@dataclass(frozen=True)
class Resume:
    head: str | None
    # The previous process died mid-line; the torn line stays as evidence.
    torn_tail: bool = False
    # Lines after the last readable record (garbled, oversized): kept as evidence, skipped by the chain.
    unreadable_lines: int = 0
    unreadable_bytes: int = 0


class FileSink:
    def __init__(self, path: Path, rotate_bytes: int, fsync: bool, keep_rotated: int = 0) -> None:
        self.path = path
        self.rotate_bytes = rotate_bytes
        self.fsync = fsync
        # Rotated files kept beside the live one (oldest deleted first); 0 keeps them all.
        self.keep_rotated = keep_rotated
        self._fd: int | None = None
        self._size = 0
        self._identity: tuple[int, int] | None = None

    def describe(self) -> str:
        return str(self.path)

    def open(self) -> Resume:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_mode & 0o077:
                os.fchmod(fd, 0o600)
            resume = _resume_from_tail(fd)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        stat = os.fstat(fd)
        self._size = stat.st_size
        self._identity = (stat.st_dev, stat.st_ino)
        return resume

    def replaced(self) -> bool:
        """The open file is no longer the one at the path (deleted, or its folder removed or swapped)."""
        if self._fd is None:
            return False
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return True
        return (stat.st_dev, stat.st_ino) != self._identity

    def should_rotate(self, line_bytes: int) -> bool:
        return bool(self.rotate_bytes) and self._size > 0 and self._size + line_bytes > self.rotate_bytes

    def rotate(self) -> tuple[str, list[str]]:
        """Moves the full file aside under a sortable UTC name and opens a fresh one.

        Returns the rotated file's name and the names of old rotated files deleted to keep
        `keep_rotated` of them.
        """
        # One clock read: seconds and microseconds read apart can straddle a second and name
        # a later file so that it sorts before an earlier one, which breaks the chain's order.
        seconds, micros = divmod(time.time_ns() // 1000, 1_000_000)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(seconds)) + f"{micros:06d}Z"
        target = self.path.with_name(f"{self.path.name}.{stamp}")
        serial = 0
        while target.exists():
            serial += 1
            target = self.path.with_name(f"{self.path.name}.{stamp}-{serial}")
        if self.fsync and self._fd is not None:
            os.fsync(self._fd)
        self.close()
        os.rename(self.path, target)
        self.open()
        return target.name, self._prune()

    def _prune(self) -> list[str]:
        if not self.keep_rotated:
            return []
        prefix = self.path.name + "."
        rotated = sorted(
            entry.name
            for entry in self.path.parent.iterdir()
            if entry.name.startswith(prefix) and entry.name[len(prefix) : len(prefix) + 1].isdigit()
        )
        deleted = rotated[: max(0, len(rotated) - self.keep_rotated)]
        for name in deleted:
            try:
                os.unlink(self.path.parent / name)
            except FileNotFoundError:
                pass
        return deleted

    def write(self, line: str) -> None:
        if self._fd is None:
            raise OSError("audit file is not open")
        data = (line + "\n").encode("ascii")
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
            self._size += written

    def sync(self, head: str) -> None:
        """Called after each batch of writes: one fsync covers the batch (group commit)."""
        if self.fsync and self._fd is not None:
            os.fsync(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                os.close(fd)
            except OSError:
                pass


def _resume_from_tail(fd: int) -> Resume:
    size = os.fstat(fd).st_size
    if size == 0:
        return Resume(head=None)
    torn = os.pread(fd, 1, size - 1) != b"\n"
    if torn:
        os.write(fd, b"\n")
    unreadable_lines = unreadable_bytes = 0
    for start, end in _lines_backwards(fd, size):
        head = _record_hash(fd, start, end)
        if head is not None:
            break
        unreadable_lines += 1
        unreadable_bytes += end - start + 1
    else:
        head = None
    if torn:
        # The torn line is reported on its own; it is not counted as an unreadable record.
        unreadable_lines = max(0, unreadable_lines - 1)
    return Resume(head=head, torn_tail=torn, unreadable_lines=unreadable_lines, unreadable_bytes=unreadable_bytes)


def _lines_backwards(fd: int, size: int) -> Iterator[tuple[int, int]]:
    """(start, end) of each line, last line first; `end` is the offset of its newline."""
    line_end = size - 1
    position = line_end
    while position > 0:
        chunk_start = max(0, position - TAIL_CHUNK)
        chunk = os.pread(fd, position - chunk_start, chunk_start)
        cut = len(chunk)
        while (newline := chunk.rfind(b"\n", 0, cut)) >= 0:
            yield chunk_start + newline + 1, line_end
            line_end = chunk_start + newline
            cut = newline
        position = chunk_start
    if line_end > 0:
        yield 0, line_end


def _record_hash(fd: int, start: int, end: int) -> str | None:
    if end - start > MAX_LINE_BYTES or end == start:
        return None
    try:
        record = json.loads(os.pread(fd, end - start, start))
    except ValueError:
        return None
    head = record.get("hash") if isinstance(record, dict) else None
    return head if isinstance(head, str) else None


class StreamSink:
    """JSON lines on a stream (stdout for a cluster's log pipeline)."""

    def __init__(self, stream: TextIO, head_file: Path, name: str = "stdout") -> None:
        self.stream = stream
        self.head_file = head_file
        self.name = name

    def describe(self) -> str:
        return self.name

    def open(self) -> Resume:
        try:
            head = self.head_file.read_text("ascii").strip() or None
        except FileNotFoundError:
            head = None
        return Resume(head=head)

    def should_rotate(self, line_bytes: int) -> bool:
        return False

    def rotate(self) -> tuple[str, list[str]]:
        # Never asked (should_rotate is False): a stream has no size to cap, the chain just goes on.
        return self.name, []

    def replaced(self) -> bool:
        return False

    def write(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()

    def sync(self, head: str) -> None:
        """Called after each batch of writes: the head file lets the next start continue the chain."""
        self.head_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        scratch = self.head_file.with_name(self.head_file.name + ".tmp")
        fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(head + "\n")
        os.replace(scratch, self.head_file)

    def close(self) -> None:
        """The stream belongs to the process; nothing to release."""
