"""The policy engine every decision goes through, with hot reload.

The engine holds one `_Active` (snapshot + decider) and replaces it with a single
assignment, so a decision sees either the old policy or the new one, never a mix.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ..identity.principal import Principal
from .index import DecisionIndex
from .layers import LayeredDecider, OwnerPolicy, load_owner_policy, owner_subjects
from .source import ERROR, NO_RULE, Finding, PolicyError, PolicySnapshot, load_files

if TYPE_CHECKING:
    from .store import PolicyStore


class AuditTrail(Protocol):
    def policy_reload(self, *, ok: bool, sha256: str | None, reason: str | None, source: str) -> object: ...


class _PlainCasbin:
    """For a custom model the index does not know: Casbin itself, rule by rule."""

    def __init__(self, snapshot: PolicySnapshot) -> None:
        self._enforcer = snapshot.enforcer

    def allowed(self, subjects: tuple[str, ...], action: str, path: str) -> bool:
        return bool(self._enforcer.enforce(subjects, path, action))

    def subtree_allowed(self, subjects: tuple[str, ...], action: str, folder: str) -> bool:
        # An arbitrary matcher cannot be reasoned about for paths not yet asked: refuse folder operations.
        return False


@dataclass(frozen=True)
class _Active:
    snapshot: PolicySnapshot
    decider: DecisionIndex | _PlainCasbin | LayeredDecider
    owner: OwnerPolicy | None = None


def make_decider(snapshot: PolicySnapshot, cache_size: int) -> DecisionIndex | _PlainCasbin:
    if snapshot.standard_model:
        return DecisionIndex(snapshot.rules, snapshot.links, cache_size=cache_size)
    return _PlainCasbin(snapshot)


class PolicyEngine:
    def __init__(
        self,
        model_path: str | Path,
        policy_path: str | Path,
        audit_trail: AuditTrail | None = None,
        log: logging.Logger | None = None,
        poll_interval: float = 0.5,
        cache_size: int = 65536,
        owner_policy_path: str | Path | None = None,
        owner: str = "",
        store: PolicyStore | None = None,
        store_poll_interval: float = 2.0,
    ) -> None:
        self.model_path = Path(model_path)
        self.policy_path = Path(policy_path)
        self.owner_policy_path = Path(owner_policy_path) if owner_policy_path else None
        self._owner_subjects = owner_subjects(owner)
        self._audit = audit_trail
        self._log = log or logging.getLogger(__name__)
        self._poll_interval = poll_interval
        self._cache_size = cache_size
        # With a store, the baseline comes from it instead of policy_path.
        self._store = store
        self._store_poll_interval = store_poll_interval
        # A bad policy at startup is fatal: there is no last good one to keep.
        self._active = self._activate(
            store.load_now(self.model_path) if store else load_files(self.model_path, self.policy_path)
        )
        # A bad owner file is not: the server starts with the baseline alone.
        if self.owner_policy_path is not None:
            self._active = self._with_owner_file(startup=True) or self._active
        self._loaded_stamp = self._stamp()
        self._pending_stamp: tuple[tuple[int, int, int], ...] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._store_watcher: asyncio.Task[None] | None = None
        self._reload_listeners: list[Callable[[], None]] = []

    @property
    def audit_trail(self) -> AuditTrail | None:
        return self._audit

    @property
    def snapshot(self) -> PolicySnapshot:
        return self._active.snapshot

    @property
    def owner_policy(self) -> OwnerPolicy | None:
        return self._active.owner

    def allowed(self, principal: Principal, action: str, path: str) -> bool:
        return self._active.decider.allowed(principal.subjects, action, path)

    def deciding_rule(self, principal: Principal, action: str, path: str) -> str | None:
        """What decided, in `policy explain`'s words, for the audit record; None for a custom model."""
        decider = self._active.decider
        if isinstance(decider, _PlainCasbin):
            return None
        if isinstance(decider, LayeredDecider):
            found = decider.deciding_rule(principal.subjects, action, path)
            if found is None:
                return NO_RULE
            layer, rule = found
            return f"{layer} line {rule.line}: {rule}"
        rule = decider.deciding_rule(principal.subjects, action, path)
        return f"line {rule.line}: {rule}" if rule is not None else NO_RULE

    def allowed_subtree(self, principal: Principal, action: str, folder: str) -> bool:
        """`action` on `folder` and on everything beneath it, whatever may be there (moves, deletes)."""
        return self._active.decider.subtree_allowed(principal.subjects, action, folder)

    def add_reload_listener(self, listener: Callable[[], None]) -> None:
        """Called after each successful reload: decisions held open (websockets) are taken again."""
        self._reload_listeners.append(listener)

    async def start(self) -> None:
        if self._watcher is None:
            self._watcher = asyncio.create_task(self._watch(), name="collab-mcp-policy-watch")
        if self._store is not None and self._store_watcher is None:
            self._store_watcher = asyncio.create_task(self._watch_store(), name="collab-mcp-policy-store-watch")

    async def stop(self) -> None:
        for watcher in (self._watcher, self._store_watcher):
            if watcher is not None:
                watcher.cancel()
                try:
                    await watcher
                except asyncio.CancelledError:
                    pass
        self._watcher = self._store_watcher = None
        if self._store is not None:
            await self._store.close()

    async def reload(self, baseline: bool = True, owner: bool = True) -> bool:
        """Load the files now; keep the last good policy of a layer whose file is bad."""
        ok = await self._reload_baseline() if baseline else True
        if owner and self.owner_policy_path is not None:
            active = await asyncio.to_thread(self._with_owner_file)
            if active is None:
                return False
            self._active = active
            self._notify_reload()
        return ok

    async def _reload_baseline(self) -> bool:
        source = self._store.describe() if self._store else str(self.policy_path)
        try:
            if self._store is not None:
                snapshot = await self._store.load(self.model_path)
            else:
                snapshot = await asyncio.to_thread(load_files, self.model_path, self.policy_path)
            active = await asyncio.to_thread(self._activate, snapshot, self._active.owner)
        except PolicyError as error:
            self._log.error("policy reload refused, keeping the last good policy: %s", error)
            self._record(ok=False, sha256=None, reason=str(error), source=source)
            return False
        self._active = active
        for finding in snapshot.findings:
            self._log.warning("policy %s: %s", source, finding)
        self._log.info(
            "policy reloaded from %s (sha256 %s, %d rules)",
            source,
            snapshot.sha256,
            len(snapshot.rules),
        )
        self._record(ok=True, sha256=snapshot.sha256, reason=None, source=source)
        self._notify_reload()
        return True

    def _notify_reload(self) -> None:
        for listener in self._reload_listeners:
            try:
                listener()
            except Exception:  # noqa: BLE001 - one failing listener must not keep the others stale
                self._log.exception("a policy reload listener failed")

    def _activate(self, snapshot: PolicySnapshot, owner: OwnerPolicy | None = None) -> _Active:
        if owner is None or not snapshot.standard_model:
            return _Active(snapshot, make_decider(snapshot, self._cache_size), owner)
        return _Active(snapshot, LayeredDecider(snapshot, owner, self._owner_subjects, self._cache_size), owner)

    def _with_owner_file(self, startup: bool = False) -> _Active | None:
        """The active policy with the owner file read again; None (logged, audited) when the file is bad.

        An absent file means no owner rules (audited when it disappears, not at every start);
        a bad one keeps the last good owner rules.
        """
        source = str(self.owner_policy_path)
        try:
            owner = load_owner_policy(source)
            if owner is not None and not self.snapshot.standard_model:
                raise PolicyError(source, [Finding(ERROR, None, "owner policy files need the bundled model")])
            active = self._activate(self.snapshot, owner)
        except PolicyError as error:
            self._log.error("owner policy refused, keeping the last good owner rules: %s", error)
            self._record(ok=False, sha256=None, reason=str(error), source=source)
            return None
        if owner is None:
            self._log.info("no owner policy at %s: the baseline alone applies", source)
            if not startup:
                self._record(ok=True, sha256=None, reason="no owner policy file", source=source)
            return active
        for finding in owner.ignored:
            self._log.warning("owner policy %s: %s", source, finding)
        self._log.info("owner policy loaded from %s (sha256 %s)", source, owner.snapshot.sha256)
        self._record(ok=True, sha256=owner.snapshot.sha256, reason=owner.ignored_summary, source=source)
        return active

    def _record(self, **fields: object) -> None:
        if self._audit is None:
            return
        try:
            self._audit.policy_reload(**fields)
        except Exception:  # noqa: BLE001 - a broken audit sink must not undo a good reload
            self._log.exception("could not audit a policy reload")

    def _stamp(self) -> tuple[tuple[int, int, int], ...]:
        """What changes when either file is rewritten, renamed over, or resized: (model, policy[, owner])."""
        # With a store the policy file is not read: a constant, so its changes never reload the baseline.
        stamps = [_file_stamp(self.model_path), (0, 0, 0) if self._store else _file_stamp(self.policy_path)]
        if self.owner_policy_path is not None:
            stamps.append(_file_stamp(self.owner_policy_path))
        return tuple(stamps)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._poll_interval)
            try:
                await self.poll_once()
            except Exception:  # noqa: BLE001 - the watcher must outlive any one bad reload
                self._log.exception("policy watcher failed; will retry on the next change")

    async def _watch_store(self) -> None:
        assert self._store is not None
        while True:
            try:
                # Closed here, not by the garbage collector: it holds the LISTEN connection.
                async with aclosing(self._store.changes(self._store_poll_interval)) as changes:
                    async for _ in changes:
                        await self._reload_baseline()
            except Exception:  # noqa: BLE001 - the watcher must outlive any one failure
                self._log.exception("policy store watcher failed; restarting it")
                await asyncio.sleep(self._store_poll_interval)

    async def poll_once(self) -> bool:
        """One watcher tick; True when it reloaded (successfully or not).

        A change is applied on the first tick that sees the files unchanged since the
        previous tick, so a writer still appending is never read half-way, and a change
        takes effect within two poll intervals plus the load itself.
        """
        stamp = self._stamp()
        if stamp == self._loaded_stamp:
            self._pending_stamp = None
            return False
        if stamp != self._pending_stamp:
            self._pending_stamp = stamp
            return False
        previous, self._loaded_stamp = self._loaded_stamp, stamp
        self._pending_stamp = None
        await self.reload(baseline=stamp[:2] != previous[:2], owner=stamp[2:] != previous[2:])
        return True


def _file_stamp(path: Path) -> tuple[int, int, int]:
    try:
        status = os.stat(path)
    except OSError:
        return (0, -1, 0)
    return (status.st_mtime_ns, status.st_size, status.st_ino)
