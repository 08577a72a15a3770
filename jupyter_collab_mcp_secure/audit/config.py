"""Audit settings, as traits that `CollabMCP` inherits (`c.CollabMCP.audit_log = ...`)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from jupyter_core.paths import jupyter_data_dir
from traitlets import Bool, HasTraits, Int, TraitError, Unicode, validate

from .sinks import FileSink, StreamSink
from .trail import AuditTrail

STDOUT = "stdout"
STATE_DIR_NAME = "collab_mcp"


class AuditConfig(HasTraits):
    audit_log = Unicode(
        "",
        config=True,
        help="""Where the audit trail goes: a file path (JSON lines, created 0600; it must lie
        outside the served root) or "stdout" (JSON lines on the server's standard output, for a
        cluster's log pipeline). Empty: collab_mcp/audit.jsonl in Jupyter's data directory
        when that lies outside the served root, else stdout.""",
    )
    audit_fsync = Bool(
        False,
        config=True,
        help="fsync the audit file after every record (every record is always flushed to the OS).",
    )
    audit_rotate_bytes = Int(
        64 * 1024 * 1024,
        config=True,
        help="""Rotate the audit file once it would grow past this many bytes: it is renamed to
        <audit_log>.<UTC timestamp> and the hash chain continues in a fresh file. 0: never rotate.""",
    )
    audit_head_every = Int(
        1000,
        config=True,
        help="""Write the audit chain head to the server log every this many records (and always
        at shutdown), so it can be anchored outside the audit file. 0: only at shutdown.""",
    )
    audit_fail_open = Bool(
        False,
        config=True,
        help="""While the audit sink cannot write, let tool calls through (logged as a warning)
        instead of refusing them with `unavailable` (the default, fail-closed).""",
    )
    audit_digest_key_file = Unicode(
        "",
        config=True,
        help="""File holding the key for the keyed digest of tool arguments (created 0600 at first
        start). Empty: <audit file stem>.digest-key beside the audit file, or
        collab_mcp/audit-digest.key in Jupyter's data directory when auditing to stdout.""",
    )

    @validate("audit_rotate_bytes", "audit_head_every")
    def _not_negative(self, proposal):
        if proposal["value"] < 0:
            raise TraitError(f"{proposal['trait'].name} must be 0 or more, not {proposal['value']}")
        return proposal["value"]

    def make_audit_trail(self, root_dir: str, log: logging.Logger) -> AuditTrail:
        """The trail for this server (start it with `await trail.start()`)."""
        root = Path(root_dir).expanduser().resolve()
        target = self.audit_log or default_audit_log(root)
        if target == STDOUT:
            state_dir = Path(jupyter_data_dir()) / STATE_DIR_NAME
            key_file = Path(self.audit_digest_key_file or state_dir / "audit-digest.key").expanduser()
            sink: FileSink | StreamSink = StreamSink(sys.stdout, head_file=key_file.with_name("audit-stdout.head"))
        else:
            path = Path(target).expanduser().resolve()
            if _inside(path, root):
                raise ValueError(
                    f"audit_log {path} lies inside the served root {root}: agents could rewrite it; "
                    "choose a path outside the root or 'stdout'"
                )
            key_file = Path(self.audit_digest_key_file or path.with_name(path.stem + ".digest-key")).expanduser()
            sink = FileSink(path, rotate_bytes=self.audit_rotate_bytes, fsync=self.audit_fsync)
        if _inside(key_file.resolve(), root):
            log.warning("audit digest key %s lies inside the served root; set audit_digest_key_file", key_file)
        return AuditTrail(
            sink,
            key_file,
            log,
            fail_open=self.audit_fail_open,
            head_every=self.audit_head_every,
        )


def default_audit_log(root: Path) -> str:
    data_dir = Path(jupyter_data_dir()).expanduser().resolve()
    if _inside(data_dir, root):
        return STDOUT
    return str(data_dir / STATE_DIR_NAME / "audit.jsonl")


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents
