"""Audit defaults under JupyterHub: every record names its server, and the digest key in the hidden
Jupyter data folder of the home (the served root) is not warned about at every start."""

from __future__ import annotations

import logging

from audit_fixtures import make_trail, records

from jupyter_collab_mcp_secure.audit.config import AuditConfig, server_name


def test_the_server_is_named_as_the_hub_names_it(monkeypatch):
    monkeypatch.delenv("JUPYTERHUB_USER", raising=False)
    monkeypatch.delenv("JUPYTERHUB_SERVER_NAME", raising=False)
    assert server_name("owner") == "owner/"
    monkeypatch.setenv("JUPYTERHUB_USER", "alice")
    assert server_name("owner") == "alice/"
    monkeypatch.setenv("JUPYTERHUB_SERVER_NAME", "gpu")
    assert server_name("owner") == "alice/gpu"


async def test_every_record_names_its_server_the_trails_own_records_too(tmp_path):
    trail = make_trail(tmp_path, server="alice/gpu")
    await trail.start()
    trail.record({"event": "tool_call", "user": "bob", "server": "forged/"})
    trail.auth_failure("10.0.0.1", "invalid token", "jwt")
    await trail.close()
    assert [r["server"] for r in records(tmp_path / "audit.jsonl")] == ["alice/gpu"] * 3


def test_digest_key_warning_only_for_a_key_jupyter_serves(tmp_path, caplog):
    home = tmp_path / "home"
    hidden_key = home / ".local" / "share" / "jupyter" / "collab_mcp_secure" / "audit" / "audit-digest.key"
    with caplog.at_level(logging.WARNING, logger="t"):
        AuditConfig(audit_log="stdout", audit_digest_key_file=str(hidden_key)).make_audit_trail(
            str(home), logging.getLogger("t")
        )
    assert not [m for m in caplog.messages if "digest key" in m]
    with caplog.at_level(logging.WARNING, logger="t"):
        AuditConfig(audit_log="stdout", audit_digest_key_file=str(home / "keys" / "k")).make_audit_trail(
            str(home), logging.getLogger("t")
        )
    assert [m for m in caplog.messages if "digest key" in m and "serves" in m]
