"""Audit settings, as traits that `CollabMCP` inherits (`c.CollabMCP.audit_log = ...`)."""

from __future__ import annotations

import getpass
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from traitlets import Bool, Float, HasTraits, Int, Unicode

from ..config_ranges import not_negative, positive
from ..state_dir import default_state_dir
from .bounds import DEFAULT_MAX_CHARS
from .sinks import FileSink, StreamSink
from .trail import AuditTrail

if TYPE_CHECKING:
    from ..ratelimit.refusals import RefusalBudget

STDOUT = "stdout"
AUDIT_DIR_NAME = "audit"


class AuditConfig(HasTraits):
    audit_log = Unicode(
        "",
        config=True,
        help="""Where the audit trail goes: a file path (JSON lines, created 0600; it must lie
        outside the served root) or "stdout" (JSON lines on the server's standard output, for a
        cluster's log pipeline). Empty: <state_dir>/audit/audit.jsonl when state_dir lies outside
        the served root, else stdout.""",
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
    audit_keep_rotated = Int(
        10,
        config=True,
        help="""Rotated audit files kept beside the live one; at each rotation the oldest beyond
        this many are deleted (named in the new file's first record), so the trail cannot fill
        the disk. Ship them elsewhere first if you must keep more. 0: keep them all.""",
    )
    audit_field_max_chars = Int(
        DEFAULT_MAX_CHARS,
        config=True,
        help="""Longest string a caller can put into an audit record field (client, tool, user and
        agent names, paths, reasons, key ids); longer ones are cut and marked with their length
        and SHA-256. Lists and mappings keep at most 64 entries.""",
    )
    audit_suppressed_interval = Float(
        60.0,
        config=True,
        help="""Seconds over which refusals past a principal's budget (refusal_record_limit,
        auth_failure_limit) are counted before one `refusals_suppressed` record reports them.""",
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
        <state_dir>/audit/audit-digest.key when auditing to stdout.""",
    )

    _audit_not_negative = not_negative("audit_rotate_bytes", "audit_head_every", "audit_keep_rotated")
    _audit_positive = positive("audit_field_max_chars", "audit_suppressed_interval")

    def make_audit_trail(self, root_dir: str, log: logging.Logger, refusals: RefusalBudget | None = None) -> AuditTrail:
        """The trail for this server (start it with `await trail.start()`)."""
        root = Path(root_dir).expanduser().resolve()
        audit_dir = self._audit_state_dir() / AUDIT_DIR_NAME
        target = self.audit_log or default_audit_log(root, audit_dir)
        if target == STDOUT:
            key_file = Path(self.audit_digest_key_file or audit_dir / "audit-digest.key").expanduser()
            sink: FileSink | StreamSink = StreamSink(sys.stdout, head_file=key_file.with_name("audit-stdout.head"))
        else:
            path = Path(target).expanduser().resolve()
            if _inside(path, root):
                raise ValueError(
                    f"audit_log {path} lies inside the served root {root}: agents could rewrite it; "
                    "choose a path outside the root or 'stdout'"
                )
            key_file = Path(self.audit_digest_key_file or path.with_name(path.stem + ".digest-key")).expanduser()
            sink = FileSink(
                path, rotate_bytes=self.audit_rotate_bytes, fsync=self.audit_fsync, keep_rotated=self.audit_keep_rotated
            )
        if _served(key_file.resolve(), root, self._allow_hidden()):
            log.warning("audit digest key %s lies at a path this server serves; set audit_digest_key_file", key_file)
        return AuditTrail(
            sink,
            key_file,
            log,
            fail_open=self.audit_fail_open,
            head_every=self.audit_head_every,
            server=server_name(getattr(self, "owner", "")),
            max_field_chars=self.audit_field_max_chars,
            refusals=refusals,
            suppressed_interval=self.audit_suppressed_interval,
        )

    def _audit_state_dir(self) -> Path:
        # CollabMCP's state_dir (already expanded), so moving it moves the audit trail with the rest.
        return Path(getattr(self, "state_dir", "") or default_state_dir()).expanduser()

    def _allow_hidden(self) -> bool:
        contents = getattr(getattr(self, "serverapp", None), "contents_manager", None)
        return bool(getattr(contents, "allow_hidden", False))


def server_name(owner: str) -> str:
    """`<user>/<server name>` as JupyterHub writes it (`alice/` is alice's default server)."""
    user = os.environ.get("JUPYTERHUB_USER") or owner or getpass.getuser()
    return f"{user}/{os.environ.get('JUPYTERHUB_SERVER_NAME', '')}"


def default_audit_log(root: Path, audit_dir: Path) -> str:
    """`<audit_dir>/audit.jsonl`, or stdout when that folder lies inside the served root."""
    audit_dir = audit_dir.expanduser().resolve()
    if _inside(audit_dir, root):
        return STDOUT
    return str(audit_dir / "audit.jsonl")


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _served(path: Path, root: Path, allow_hidden: bool) -> bool:
    """Whether Jupyter would serve `path`: inside the root, and not hidden unless hidden files are served.

    Under JupyterHub the root is the home, so the default key (in the hidden Jupyter
    data folder) is inside it but never served.
    """
    if not _inside(path, root):
        return False
    return allow_hidden or not any(part.startswith(".") for part in path.relative_to(root).parts)
