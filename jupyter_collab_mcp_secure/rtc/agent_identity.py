"""How an agent appears to collaborators: JupyterLab's `user` awareness fields from verified identity."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from ..identity.principal import Principal

# Distinct, readable on light and dark themes (JupyterLab accepts any CSS colour).
_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")
_UNSAFE = re.compile(r"[^a-z0-9._-]+")
# JupyterLab cuts a cursor's name chip at about 20 characters.
MAX_SHORT_NAME = 20


@dataclass(frozen=True)
class AgentIdentity:
    # Whose agent this is: only the same principal (and client) may move, change or remove it.
    key: tuple[str, str, str | None, str | None]
    user: str
    username: str
    label: str
    short_name: str
    initials: str
    color: str
    verified_agent: bool

    @classmethod
    def of(cls, principal: Principal) -> AgentIdentity:
        agent_name = principal.agent or principal.declared_client or "agent"
        slug = _UNSAFE.sub("-", agent_name.lower()).strip("-")[:40] or "agent"
        # Not the person's own username: JupyterLab hides collaborators who share the viewer's
        # username, and people must see their own agents.
        username = f"{principal.user}+{slug}"
        label = principal.label[:120]
        person = principal.display_name or principal.user
        initials = (agent_name[:1] + person[:1]).upper() or "AG"
        digest = hashlib.blake2b(username.encode(), digest_size=2).digest()
        return cls(
            key=(principal.realm, principal.user, principal.agent, principal.declared_client),
            user=principal.user,
            username=username,
            label=label,
            short_name=_shorten(" ".join(agent_name.split()), MAX_SHORT_NAME) or "agent",
            initials=initials,
            color=_COLORS[int.from_bytes(digest, "big") % len(_COLORS)],
            verified_agent=principal.agent is not None,
        )

    def user_field(self) -> dict[str, Any]:
        """JupyterLab's awareness `user` object, plus who the agent works for.

        `name` is what the cursor's chip shows, so it is short; `display_name` (the Collaborators
        panel) is the full "<agent> for <user>".
        """
        return {
            "username": self.username,
            "name": self.short_name,
            "display_name": self.label,
            "initials": self.initials,
            "color": self.color,
            "avatar_url": None,
            "is_agent": True,
            "agent_for": self.user,
        }


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
