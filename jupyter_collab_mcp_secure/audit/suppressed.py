"""Refusals past their principal's budget, counted instead of written: one record per interval.

The trail's writer thread asks `due_in()` how long it may sleep and `take()` the
summary record once the interval that began with the first counted refusal is over
(or at shutdown).
"""

from __future__ import annotations

import collections
import threading
import time
from datetime import datetime, timezone
from typing import Any

from .bounds import bound_text

SUPPRESSED_EVENT = "refusals_suppressed"
# Distinct principals counted per interval; the rest share one entry.
MAX_KEYS = 1000
# Principals named in one record (the busiest); the rest are summed under OTHERS. Below the
# 64 entries a record's mapping may hold (audit.bounds), so no count is cut off.
MAX_NAMED = 50
OTHERS = "(others)"
# Reasons can carry caller text (a JWT key id): kept short, and few per principal.
MAX_REASON_CHARS = 200
MAX_REASONS = 16
OTHER_REASONS = "(other reasons)"


class SuppressedRefusals:
    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._counts: dict[str, collections.Counter[str]] = {}
        self._since: str | None = None
        self._due: float | None = None
        self._lock = threading.Lock()

    def count(self, key: str, reason: str) -> bool:
        """Counts one refusal; True when it opens a new interval (the writer must learn the deadline)."""
        with self._lock:
            opened = self._since is None
            if opened:
                self._since = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
                self._due = time.monotonic() + self.interval
            if key not in self._counts and len(self._counts) >= MAX_KEYS:
                key = OTHERS
            reasons = self._counts.setdefault(key, collections.Counter())
            reason = bound_text(reason, MAX_REASON_CHARS)
            if reason not in reasons and len(reasons) >= MAX_REASONS:
                reason = OTHER_REASONS
            reasons[reason] += 1
        return opened

    def due_in(self) -> float | None:
        """Seconds until the current interval ends; None when nothing is counted."""
        due = self._due
        return None if due is None else max(0.0, due - time.monotonic())

    def take(self, force: bool) -> dict[str, Any] | None:
        """The summary record once the interval is over (`force`: now), and a fresh interval."""
        with self._lock:
            if self._due is None or (not force and time.monotonic() < self._due):
                return None
            counts, since = self._counts, self._since
            self._counts, self._since, self._due = {}, None, None
        busiest = sorted(counts, key=lambda key: sum(counts[key].values()), reverse=True)
        others: collections.Counter[str] = collections.Counter()
        for key in busiest[MAX_NAMED:]:
            others.update(counts.pop(key))
        if others:
            counts[OTHERS] = others
        return {
            "event": SUPPRESSED_EVENT,
            "since": since,
            "total": sum(sum(reasons.values()) for reasons in counts.values()),
            "counts": {key: dict(reasons) for key, reasons in counts.items()},
        }
