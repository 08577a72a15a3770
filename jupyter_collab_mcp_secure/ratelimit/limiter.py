"""Per-principal rate limits over `limits` (asyncio API), in memory or shared through Redis.

Counters are keyed by the principal's rate key (`<realm>:<user>`, or an agent's own
`<realm>:<user>:agent:<id>` when it has an override: see budgets.py) and the action
class, so every server pointed at the same storage enforces one budget per principal.
"""

from __future__ import annotations

import logging
import math
import time
import urllib.parse
from typing import TYPE_CHECKING, Any

from limits.aio.strategies import (
    MovingWindowRateLimiter,
    SlidingWindowCounterRateLimiter,
)
from limits.errors import StorageError
from limits.storage import storage_from_string

from ..gateway.errors import RATE_LIMITED, UNAVAILABLE, ToolFailure
from ..upstream import MemoryStorageHooks
from .budgets import Budgets

if TYPE_CHECKING:
    from ..identity.principal import Principal

STRATEGIES = {"moving-window": MovingWindowRateLimiter, "sliding-window-counter": SlidingWindowCounterRateLimiter}
NAMESPACE = "collab-mcp"
# What a storage outage looks like through limits (wrap_exceptions) and the socket layer.
STORAGE_ERRORS = (StorageError, ConnectionError, TimeoutError, OSError)


def async_storage_uri(uri: str) -> str:
    """`limits` serves the asyncio API only under "async+" schemes: accept the plain ones too."""
    return uri if uri.startswith("async+") else f"async+{uri}"


def _storage_options(uri: str, timeout: float) -> dict[str, float]:
    scheme = urllib.parse.urlparse(uri).scheme
    if "redis" in scheme or "valkey" in scheme:
        return {"stream_timeout": timeout, "connect_timeout": timeout}
    return {}


class _MemoryStorage(MemoryStorageHooks):
    """limits' memory storage, sweeping expired entries at most once a second instead of after every hit.

    Upstream starts a sweep task after each hit that hands every key to a worker thread: a thread
    wake-up (and a fight for the GIL) on every tool call. The sweep only frees memory; the window
    checks compare timestamps themselves, so sweeping less often changes no decision.
    """

    SWEEP_INTERVAL = 1.0
    _next_sweep = 0.0

    async def schedule_expiry(self) -> None:
        now = time.monotonic()
        if now >= self._next_sweep:
            self._next_sweep = now + self.SWEEP_INTERVAL
            await super().schedule_expiry()


def _storage(uri: str, timeout: float) -> Any:
    if urllib.parse.urlparse(uri).scheme == "async+memory":
        return _MemoryStorage(uri, wrap_exceptions=True)
    return storage_from_string(uri, wrap_exceptions=True, **_storage_options(uri, timeout))


def _whose(principal: Principal, key: str) -> str:
    """Says when the agent, not the person it acts for, ran out: it has a budget of its own."""
    return f" of agent {principal.agent} (its own budget)" if key != principal.rate_key else ""


class RateLimiter:
    def __init__(
        self,
        budgets: Budgets,
        storage_uri: str,
        log: logging.Logger,
        *,
        strategy: str = "moving-window",
        fail_open: bool = False,
        storage_timeout: float = 2.0,
    ) -> None:
        self.budgets = budgets
        self.log = log
        self.fail_open = fail_open
        self.storage_uri = async_storage_uri(storage_uri)
        self._storage = _storage(self.storage_uri, storage_timeout)
        self._strategy = STRATEGIES[strategy](self._storage)
        self._storage_down = False

    async def hit(self, principal: Principal, rate_class: str, cost: int = 1) -> bool:
        """Charges `cost` calls of `rate_class`; raises `rate_limited` (with retry_after) when over.

        False when the storage is unreachable and fail-open let the call through unlimited.
        """
        budget, key = self.budgets.resolve(principal, rate_class)
        identifiers = (NAMESPACE, key, rate_class)
        try:
            for item in budget:
                if not await self._strategy.hit(item, *identifiers, cost=cost):
                    stats = await self._strategy.get_window_stats(item, *identifiers)
                    retry_after = max(1, math.ceil(stats.reset_time - time.time()))
                    raise ToolFailure(
                        RATE_LIMITED,
                        f"rate limit for {rate_class} calls{_whose(principal, key)} reached ({item}); "
                        f"retry in {retry_after} s",
                        retry_after=retry_after,
                        limit=str(item),
                    )
        except STORAGE_ERRORS as error:
            self._storage_failed(error)
            if not self.fail_open:
                raise ToolFailure(UNAVAILABLE, "the rate-limit storage is unreachable; try again later") from None
            return False
        self._storage_recovered()
        return True

    async def close(self) -> None:
        # limits has no close(): stop the memory storage's expiry task, drop Redis connections.
        timer = getattr(self._storage, "timer", None)
        if timer is not None and not timer.done():
            timer.cancel()
        client = getattr(getattr(self._storage, "bridge", None), "storage", None)
        pool = getattr(client, "connection_pool", None)
        if pool is not None:
            pool.disconnect()

    def _storage_failed(self, error: Exception) -> None:
        if not self._storage_down:
            self._storage_down = True
            mode = "letting calls through (rate_limit_fail_open)" if self.fail_open else "refusing calls"
            self.log.error("rate-limit storage %s unreachable (%s): %s", self.storage_uri, error, mode)

    def _storage_recovered(self) -> None:
        if self._storage_down:
            self._storage_down = False
            self.log.info("rate-limit storage %s reachable again", self.storage_uri)
