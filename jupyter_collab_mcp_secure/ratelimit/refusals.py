"""How many refusals per principal (or per address) the audit trail writes one by one.

Refused calls never reach the rate-limit stage (the policy said no first), so a
principal without grants could otherwise write audit lines as fast as it can send
requests. Past this budget the trail counts refusals instead of writing them. It is
kept in memory per server: it bounds this server's trail, whatever the others do.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from .budgets import parse_budget

# Keys tracked at once; the least recently seen is forgotten first (it starts afresh).
MAX_KEYS = 10_000
ADDRESS_PREFIX = "@"


class _Bucket:
    __slots__ = ("tokens", "updated")

    def __init__(self, tokens: float, updated: float) -> None:
        self.tokens = tokens
        self.updated = updated


class RefusalBudget:
    """Token buckets: `principal_limit` for principals, `address_limit` for keys starting with '@'."""

    def __init__(self, principal_limit: str, address_limit: str) -> None:
        self._rates = {False: _rate(principal_limit), True: _rate(address_limit)}
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def admit(self, key: str) -> bool:
        capacity, per_second = self._rates[key.startswith(ADDRESS_PREFIX)]
        now = time.monotonic()
        with self._lock:
            bucket = self._buckets.pop(key, None) or _Bucket(capacity, now)
            self._buckets[key] = bucket
            if len(self._buckets) > MAX_KEYS:
                self._buckets.popitem(last=False)
            bucket.tokens = min(capacity, bucket.tokens + (now - bucket.updated) * per_second)
            bucket.updated = now
            if bucket.tokens < 1:
                return False
            bucket.tokens -= 1
            return True


def _rate(text: str) -> tuple[float, float]:
    """(burst, sustained per second) of a limits string; with several limits the tightest wins."""
    items = parse_budget(text)
    return float(min(item.amount for item in items)), min(item.amount / item.get_expiry() for item in items)
