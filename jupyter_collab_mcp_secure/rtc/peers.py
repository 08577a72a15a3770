"""IN PROGRESS (owner: awareness engineer): agents as their own collaborator peers in rooms."""

from __future__ import annotations

import logging
from typing import Any

from ..identity.principal import Principal


class AgentPeers:
    def __init__(self, rtc: Any, log: logging.Logger, idle_timeout: float) -> None:
        self.rtc = rtc
        self.log = log
        self.idle_timeout = idle_timeout

    async def touch(
        self,
        principal: Principal,
        mcp_session_id: str | None,
        document: Any,
        *,
        cell_id: str | None = None,
        index: int | None = None,
    ) -> None:
        """Make the agent a visible peer in the document's room, its cursor at the cell (or text index) it last used."""

    async def end_session(self, mcp_session_id: str) -> None:
        """The MCP session ended: its agents leave every room at once."""

    async def close(self) -> None:
        """Server shutdown: every agent peer leaves."""
