"""The audit trail: records built on the event loop, chained and written by one thread.

`record()` only stamps the event (structlog) and hands it to a queue, so the event
loop never waits on the disk. A single writer thread seals each record onto the
hash chain, writes it (flushed, optionally fsynced), rotates by size and logs the
chain head every N records and at shutdown, so the head can be anchored outside
the file. When the sink cannot write, `healthy` turns False until a retry succeeds;
the audit stage then refuses calls (fail-closed) unless fail-open is configured.
A file removed (or replaced) under the writer is noticed before the next batch: a
new file is opened whose chain links to the head the old one ended with.

Refusals (denied, rate-limited, malformed calls, authentication failures) pass a
per-principal budget: past it they are counted, and the writer emits the counts
as one `refusals_suppressed` record per interval, so a flood costs a few lines.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import queue
import socket
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from .bounds import DEFAULT_MAX_CHARS, MAX_RECORD_BYTES, FieldBounds, bound_text, oversized
from .digest import ArgumentDigest, load_or_create_key
from .hashchain import GENESIS, START_EVENT, seal
from .sinks import FileSink, StreamSink
from .suppressed import SuppressedRefusals

if TYPE_CHECKING:
    from jupyter_events import EventLogger

    from ..ratelimit.refusals import RefusalBudget

SCHEMA_ID = "https://events.jupyter.org/jupyter_collab_mcp_secure/audit/v1"
SCHEMA_FILE = Path(__file__).with_name("schemas") / "record.yaml"

_STOP = object()
MAX_KEY_CHARS = 256


class _QueueLogger:
    """structlog's output end: the processed record goes to the writer thread's queue."""

    def __init__(self, outbox: queue.SimpleQueue) -> None:
        self._outbox = outbox

    def msg(self, **record: Any) -> None:
        self._outbox.put(record)


def _as_keywords(logger: Any, method_name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    return event_dict


class AuditTrail:
    def __init__(
        self,
        sink: FileSink | StreamSink,
        digest_key_file: Path,
        log: logging.Logger,
        *,
        fail_open: bool = False,
        head_every: int = 1000,
        retry_interval: float = 1.0,
        max_pending: int = 10_000,
        server: str = "",
        max_field_chars: int = DEFAULT_MAX_CHARS,
        refusals: RefusalBudget | None = None,
        suppressed_interval: float = 60.0,
    ) -> None:
        self.sink = sink
        self.digest_key_file = digest_key_file
        self.log = log
        self.fail_open = fail_open
        self.head_every = head_every
        self.retry_interval = retry_interval
        self.max_pending = max_pending
        self.server = server
        self.refusals = refusals
        self._suppressed = SuppressedRefusals(suppressed_interval)
        self.healthy = False
        self.head: str | None = None
        self.records_written = 0
        self._event_logger: EventLogger | None = None
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._pending: collections.deque[dict[str, Any]] = collections.deque()
        self._dropped = 0
        self._sink_open = False
        self._replaced = False
        self._opened_before = False
        self._in_outage = False
        self._fail_open_warned = False
        self._digest: ArgumentDigest | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._processors = [
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
            self._stamp_server,
            FieldBounds(max_chars=max_field_chars),
            self._emit_jupyter_event,
            _as_keywords,
        ]
        self._structlog = structlog.wrap_logger(
            _QueueLogger(self._queue), processors=self._processors, wrapper_class=structlog.BoundLogger
        ).bind()

    # -- lifecycle (event loop) -------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        key = await asyncio.to_thread(load_or_create_key, self.digest_key_file)
        self._digest = ArgumentDigest(key)
        await asyncio.to_thread(self._open_sink)
        self._thread = threading.Thread(target=self._run, name="collab-mcp-audit-writer", daemon=True)
        self._thread.start()

    def attach_event_logger(self, event_logger: EventLogger) -> None:
        """Also emit every record as a Jupyter event (schema SCHEMA_ID), e.g. to serverapp.event_logger."""
        event_logger.register_event_schema(SCHEMA_FILE)
        self._event_logger = event_logger

    async def close(self) -> None:
        if self._thread is None:
            return
        self._queue.put(_STOP)
        await asyncio.to_thread(self._thread.join)
        self._thread = None

    # -- recording (any thread; never blocks) -------------------------------------

    def record(self, event: dict[str, Any]) -> None:
        self._structlog.msg(**event)

    def record_refusal(self, event: dict[str, Any], key: str) -> None:
        """A refused request's record, or past `key`'s refusal budget, a count in the next summary."""
        # User names come from callers (a JWT's sub): the budget's and the counts' keys stay small.
        key = bound_text(key, MAX_KEY_CHARS)
        if self.refusals is None or self.refusals.admit(key):
            self.record(event)
            return
        reason = str(event.get("error_code") or event.get("reason") or event.get("outcome") or "refused")
        if self._suppressed.count(key, reason):
            # Wake the writer so that it waits for the new deadline.
            self._queue.put(None)

    @property
    def started(self) -> bool:
        return self._digest is not None

    def digest(self, arguments: dict[str, Any]) -> str:
        if self._digest is None:
            raise RuntimeError("the audit trail is not started")
        return self._digest(arguments)

    def auth_failure(self, remote_ip: str, reason: str, auth: str | None) -> None:
        self.record_refusal(
            {
                "event": "auth_failure",
                "outcome": "unauthenticated",
                "remote_ip": remote_ip,
                "reason": reason,
                "auth": auth,
            },
            key=f"@{remote_ip}",
        )

    def policy_reload(self, ok: bool, sha256: str | None, reason: str | None, source: str) -> None:
        self.record(
            {
                "event": "policy_reload",
                "outcome": "ok" if ok else "error",
                "policy_sha256": sha256,
                "reason": reason,
                "source": source,
            }
        )

    def note_fail_open(self) -> None:
        """Fail-open lets a call through while the sink is down: say so, once per outage."""
        if not self._fail_open_warned:
            self._fail_open_warned = True
            self.log.warning(
                "audit sink %s cannot write; audit_fail_open lets tool calls through, "
                "their records wait in memory (at most %d)",
                self.sink.describe(),
                self.max_pending,
            )

    def _stamp_server(self, logger: Any, method_name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        # One stream may carry many servers' chains (a hub's log): each record says whose it is.
        event_dict["server"] = self.server
        return event_dict

    def _emit_jupyter_event(self, logger: Any, method_name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        if self._event_logger is not None and self._loop is not None:
            if _running_loop() is self._loop:
                self._emit_now(dict(event_dict))
            else:
                try:
                    self._loop.call_soon_threadsafe(self._emit_now, dict(event_dict))
                except RuntimeError:
                    pass  # the server's loop is gone (shutdown): the file record still goes out
        return event_dict

    def _emit_now(self, event: dict[str, Any]) -> None:
        try:
            self._event_logger.emit(schema_id=SCHEMA_ID, data=event)
        except Exception:
            self.log.exception("could not emit the audit record as a Jupyter event")

    # -- the writer thread ---------------------------------------------------------

    def _run(self) -> None:
        stopping = False
        while not stopping:
            try:
                item = self._queue.get(timeout=self._wait_time())
            except queue.Empty:
                item = None
            while True:
                if item is _STOP:
                    stopping = True
                elif item is not None:
                    self._admit(item)
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            self._flush_suppressed(force=stopping)
            self._write_pending()
        self._finish()

    def _wait_time(self) -> float | None:
        waits = [] if self._sink_open else [self.retry_interval]
        due_in = self._suppressed.due_in()
        if due_in is not None:
            waits.append(due_in)
        return min(waits) if waits else None

    def _flush_suppressed(self, force: bool) -> None:
        record = self._suppressed.take(force)
        if record is None:
            return
        # The same processors as record(), but straight into this batch (the writer may be stopping).
        for processor in self._processors:
            record = processor(None, "msg", record)
        self._admit(record)

    def _admit(self, record: dict[str, Any]) -> None:
        if len(self._pending) >= self.max_pending:
            self._dropped += 1
        else:
            self._pending.append(record)

    def _write_pending(self) -> None:
        if self._sink_open and self.sink.replaced():
            self.log.error(
                "audit file %s was removed or replaced while open; continuing the chain in a new file",
                self.sink.describe(),
            )
            self.sink.close()
            self._sink_open = False
            self._replaced = True
        if not self._sink_open and not self._open_sink():
            return
        try:
            while self._pending:
                self._append(self._pending[0])
                self._pending.popleft()
                # Hand the GIL back between records: a backlog must not hold the event
                # loop for a whole switch interval (5 ms).
                time.sleep(0)
            if self._dropped:
                self._append(self._marker("audit_gap", dropped=self._dropped))
                self.log.error("audit trail dropped %d records while its sink was down", self._dropped)
                self._dropped = 0
            self.sink.sync(self.head)
        except OSError as error:
            self._failed(error)

    def _open_sink(self) -> bool:
        try:
            resume = self.sink.open()
        except OSError as error:
            self._failed(error)
            return False
        if resume.head is not None:
            self.head = resume.head
            reason = "reopen" if self._opened_before else "restart"
        elif self.head is not None:
            reason = "reopen"
        else:
            self.head = GENESIS
            reason = "new_chain"
        start = self._marker(START_EVENT, reason=reason, host=socket.gethostname(), pid=os.getpid())
        if resume.torn_tail:
            start["torn_tail"] = True
            self.log.warning(
                "audit log %s ended in a torn line (a crash mid-write); kept as evidence", self.sink.describe()
            )
        if resume.unreadable_lines:
            start["unreadable_tail"] = {"lines": resume.unreadable_lines, "bytes": resume.unreadable_bytes}
            self.log.error(
                "audit log %s ends in %d unreadable line(s) after its last record; kept as evidence, "
                "the chain continues from the last readable record",
                self.sink.describe(),
                resume.unreadable_lines,
            )
        if self._replaced:
            start["previous_file_missing"] = True
        try:
            self._append(start)
            self.sink.sync(self.head)
        except OSError as error:
            self._failed(error)
            return False
        self._opened_before = True
        self._replaced = False
        self._sink_open = True
        if self._in_outage or not self.healthy:
            self._in_outage = False
            self.log.info("audit trail writing to %s, chain head %s", self.sink.describe(), self.head)
        self.healthy = True
        self._fail_open_warned = False
        return True

    def _append(self, record: dict[str, Any]) -> None:
        digest, line = seal(record, self.head)
        if len(line) > MAX_RECORD_BYTES:
            # No line may outgrow what the sink reads back at a restart.
            record = oversized(record, line)
            digest, line = seal(record, self.head)
        if self.sink.should_rotate(len(line) + 1):
            previous, deleted = self.sink.rotate()
            start = self._marker(START_EVENT, reason="rotation", previous_file=previous)
            if deleted:
                start["deleted_files"] = deleted
            self._append(start)
            digest, line = seal(record, self.head)
        self.sink.write(line)
        self.head = digest
        self.records_written += 1
        if self.head_every and self.records_written % self.head_every == 0:
            self._log_head("periodic")

    def _marker(self, event: str, **fields: Any) -> dict[str, Any]:
        """The trail's own records (written by the writer, not through record()): same `ts` and `server`."""
        return {"event": event, "ts": _now(), "server": self.server, **fields}

    def _failed(self, error: Exception) -> None:
        if not self._in_outage:
            self._in_outage = True
            mode = (
                "letting calls through (audit_fail_open)" if self.fail_open else "refusing tool calls until it recovers"
            )
            self.log.error("audit sink %s cannot write (%s): %s", self.sink.describe(), error, mode)
        self.healthy = False
        self._sink_open = False
        self.sink.close()

    def _finish(self) -> None:
        if self._pending or self._dropped:
            self.log.error(
                "audit trail stopped with %d records it could not write to %s",
                len(self._pending) + self._dropped,
                self.sink.describe(),
            )
        if self.head is not None:
            self._log_head("shutdown")
        self.sink.close()
        self._sink_open = False
        self.healthy = False

    def _log_head(self, when: str) -> None:
        self.log.info(
            "audit chain head (%s): %s after %d records written to %s",
            when,
            self.head,
            self.records_written,
            self.sink.describe(),
        )


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
