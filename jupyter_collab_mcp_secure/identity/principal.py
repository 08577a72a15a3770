"""The one identity every later stage sees: who is calling, proven how."""

from __future__ import annotations

from dataclasses import dataclass, field

OWNER_ROLE = "role:owner"
# Users the hub's user model marks `admin: true`.
HUB_ADMIN_ROLE = "role:hub-admin"
# Hub services are principals of their own kind, never a user (or JWT agent) of the same name.
SERVICE_PREFIX = "service:"


def is_plain_name(name: str) -> bool:
    """User names and agent ids must not pose as Casbin subjects ('role:owner', 'group:x', 'agent:y')."""
    return bool(name) and ":" not in name


class AuthMethod:
    """How a principal proved who it is (the audit's `auth` field)."""

    OWNER_TOKEN = "jupyter-token"
    JUPYTER = "jupyter"
    JWT = "jwt"


@dataclass(frozen=True)
class Principal:
    user: str
    auth: str
    realm: str
    groups: tuple[str, ...] = ()
    agent: str | None = None
    is_owner: bool = False
    is_hub_admin: bool = False
    display_name: str = ""
    # clientInfo.name is self-declared by the MCP client: shown, never trusted.
    declared_client: str | None = field(default=None, compare=False)

    @property
    def subjects(self) -> tuple[str, ...]:
        """Casbin subjects whose rules apply to this principal, most specific first."""
        subjects = [self.user]
        if self.agent:
            subjects.append(f"agent:{self.agent}")
        subjects.extend(f"group:{group}" for group in self.groups)
        if self.is_owner:
            subjects.append(OWNER_ROLE)
        if self.is_hub_admin:
            subjects.append(HUB_ADMIN_ROLE)
        return tuple(subjects)

    @property
    def rate_key(self) -> str:
        """Key under which rate-limit counters are shared across servers."""
        return f"{self.realm}:{self.user}"

    @property
    def label(self) -> str:
        """How the principal appears to collaborators: "<agent> for <user>"."""
        if self.agent:
            agent = self.agent
        elif self.declared_client:
            # clientInfo.name is whatever the client says it is: shown, marked as such.
            agent = f"{self.declared_client} (self-declared)"
        else:
            agent = "agent"
        return f"{agent} for {self.display_name or self.user}"
