"""IN PROGRESS (owner: documents engineer): forks of live documents."""

from __future__ import annotations

import logging
from typing import Any

from ..gateway.errors import NOT_FOUND, ToolFailure


class ForkRegistry:
    def __init__(self, rtc: Any, log: logging.Logger, ttl: float) -> None:
        self.rtc = rtc
        self.log = log
        self.ttl = ttl

    async def root_path_of(self, fork_id: str) -> str:
        """The path of the document a fork was made from (forks are authorized on their root path)."""
        raise ToolFailure(NOT_FOUND, f"no fork '{fork_id}'")

    async def close(self) -> None:
        """Shutdown: forks never merged are dropped, their rooms stopped."""
