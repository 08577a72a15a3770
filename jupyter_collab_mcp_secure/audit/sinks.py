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
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

# Enough to hold the last complete line: audit lines are a few hundred bytes.
TAIL_WINDOW = 1 << 16


class AuditSinkError(Exception):
    """The sink exists but the chain cannot be continued from it safely."""


@dataclass(frozen=True)
class Resume:
    head: str | None
    # The previous process died mid-line; the torn line stays as evidence.
    torn_tail: bool = False


class FileSink:
    def __init__(self, path: Path, rotate_bytes: int, fsync: bool) -> None:
        self.path = path
        self.rotate_bytes = rotate_bytes
        self.fsync = fsync
        self._fd: int | None = None
        self._size = 0

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
        self._size = os.fstat(fd).st_size
        return resume

    def should_rotate(self, line_bytes: int) -> bool:
        return bool(self.rotate_bytes) and self._size > 0 and self._size + line_bytes > self.rotate_bytes

    def rotate(self) -> str:
        """Moves the full file aside under a sortable UTC name and opens a fresh one."""
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"{time.time_ns() // 1000 % 1_000_000:06d}Z"
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
        return target.name

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
    start = max(0, size - TAIL_WINDOW)
    tail = os.pread(fd, size - start, start)
    torn = not tail.endswith(b"\n")
    if torn:
        os.write(fd, b"\n")
    complete = tail if not torn else tail[: tail.rfind(b"\n") + 1]
    lines = complete.splitlines()
    if not lines and start == 0:
        return Resume(head=None, torn_tail=True)
    if not lines or (start > 0 and len(lines) == 1):
        raise AuditSinkError("no complete audit line in the file's tail: cannot continue its chain")
    try:
        head = json.loads(lines[-1])["hash"]
    except (ValueError, KeyError, TypeError) as error:
        raise AuditSinkError(
            f"the last audit line does not parse ({error}); move the file aside to start a new chain"
        ) from None
    if not isinstance(head, str):
        raise AuditSinkError("the last audit line carries no hash; move the file aside to start a new chain")
    return Resume(head=head, torn_tail=torn)


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

    def rotate(self) -> str:
        # Never asked (should_rotate is False): a stream has no size to cap, the chain just goes on.
        return self.name

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
