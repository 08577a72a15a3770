"""Policy settings of the CollabMCP extension (`c.CollabMCP.<trait>`)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from jupyter_core.paths import jupyter_config_dir
from traitlets import Bool, Float, HasTraits, Integer, Unicode, default

from ..config_ranges import not_negative, positive
from .engine import AuditTrail, PolicyEngine
from .source import bundled_policies_dir

if TYPE_CHECKING:
    from .store import PolicyStore


class PolicyConfig(HasTraits):
    policy_model = Unicode(
        help=(
            "Path of the Casbin model file. Default: the bundled policies/model.conf. A custom "
            "model is honoured but decided by plain Casbin, which is slow at hub scale."
        ),
    ).tag(config=True)

    policy_file = Unicode(
        help=(
            "Path of the Casbin policy file (CSV). Default: the bundled policies/policy.csv, where "
            "role:owner has admin on everything and nobody else has anything. The file is watched "
            "and reloaded on change; write it with an atomic rename."
        ),
    ).tag(config=True)

    owner_policy_file = Unicode(
        help=(
            "Path of the server owner's own policy file (CSV), layered on the baseline policy_file: "
            "with it the owner shares within what the baseline lets the owner do. A deny in either "
            "file wins; an owner allow applies only where the baseline allows role:owner (or the "
            "owner by name) the same action on the same path; owner lines naming role:owner, "
            "role:hub-admin or service:<name> are ignored and audited. No file: no owner rules. "
            "Watched and reloaded like policy_file; a bad file keeps the last good owner rules. "
            "Keep it outside the served root (or at a hidden path). '' turns the owner layer off. "
            "Default: <jupyter config dir>/collab_mcp/owner-policy.csv."
        ),
    ).tag(config=True)

    policy_store = Unicode(
        "",
        help=(
            "A SQLAlchemy URL of a database holding the baseline policy instead of policy_file, shared "
            "by many servers: 'postgresql+asyncpg://user@host/db' for a hub (every server LISTENs for "
            "changes), 'sqlite+aiosqlite:////path/policy.db' for one machine (polled). Rows are Casbin's "
            "casbin_rule table; write them with `jupyter collab-mcp policy push`. A bad change keeps the "
            "last good policy; owner_policy_file still applies on top. Needs the `store` extra. "
            "'' (default): the baseline is policy_file."
        ),
    ).tag(config=True)

    policy_store_poll_interval = Float(
        2.0,
        help=(
            "Seconds between reads of policy_store. On PostgreSQL a change arrives by notification "
            "at once and this poll is only the net under a lost notification connection."
        ),
    ).tag(config=True)

    policy_poll_interval = Float(
        0.5,
        help=(
            "Seconds between checks of the policy and model files. A change takes effect once the "
            "files have been stable for one interval, so within about three intervals."
        ),
    ).tag(config=True)

    policy_decision_cache_size = Integer(
        65536,
        help="Decisions remembered per loaded policy (cleared on reload). 0 disables the cache.",
    ).tag(config=True)

    policy_authorize_server = Bool(
        False,
        help=(
            "Also decide every Jupyter Server request with the same policy (one decision point): "
            "every route through a table of known routes, where any other route (a third-party "
            "extension's) needs admin on the root; /api/contents and files per path, folder moves "
            "and deletes on the whole subtree; RTC rooms per document, re-decided while open (updates "
            "from principals without write are dropped); kernels, sessions and terminals need execute "
            "on the root. See docs/policies.md. Default: on under JupyterHub, off otherwise."
        ),
    ).tag(config=True)

    _policy_positive = positive("policy_store_poll_interval", "policy_poll_interval")
    _policy_not_negative = not_negative("policy_decision_cache_size")

    @default("policy_model")
    def _default_policy_model(self) -> str:
        return str(bundled_policies_dir() / "model.conf")

    @default("policy_file")
    def _default_policy_file(self) -> str:
        return str(bundled_policies_dir() / "policy.csv")

    @default("owner_policy_file")
    def _default_owner_policy_file(self) -> str:
        return str(Path(jupyter_config_dir()) / "collab_mcp" / "owner-policy.csv")

    def make_policy_engine(
        self, audit_trail: AuditTrail | None, log: logging.Logger | None, owner: str = ""
    ) -> PolicyEngine:
        return PolicyEngine(
            self.policy_model,
            self.policy_file,
            audit_trail=audit_trail,
            log=log,
            poll_interval=self.policy_poll_interval,
            cache_size=self.policy_decision_cache_size,
            owner_policy_path=self.owner_policy_file or None,
            owner=owner,
            store=self._policy_store(log),
            store_poll_interval=self.policy_store_poll_interval,
        )

    def _policy_store(self, log: logging.Logger | None) -> PolicyStore | None:
        if not self.policy_store:
            return None
        try:
            from .store import PolicyStore
        except ImportError as error:
            raise RuntimeError(
                f"policy_store needs the `store` extra (pip install 'jupyter-collab-mcp-secure[store]'): {error}"
            ) from error
        return PolicyStore(self.policy_store, log)
