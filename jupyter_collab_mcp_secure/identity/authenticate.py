"""Turn the credential on an HTTP request into one Principal, or refuse it.

Only the Authorization header counts: a token in the query string leaks into
logs and browser history, and a cookie alone would make /mcp a cross-site
request target (the route skips XSRF checks because it never accepts cookies).
"""

from __future__ import annotations

import hmac
import inspect
from typing import Any

from jupyter_server.auth.identity import IdentityProvider, PasswordIdentityProvider
from tornado.web import RequestHandler

from .jwt_verifier import InvalidCredentials, JWTVerifier, looks_like_jwt
from .principal import SERVICE_PREFIX, AuthMethod, Principal, is_plain_name

_SCHEMES = ("token", "bearer")


class Unauthenticated(Exception):
    """No acceptable credential; `reason` is safe to log (it never holds the token)."""

    def __init__(
        self, reason: str, *, presented: bool, method: str | None = None, insufficient_scope: bool = False
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        # A token was presented and refused (RFC 6750 error="invalid_token").
        self.presented = presented
        # The token is valid, but its holder may not use this server (HTTP 403, error="insufficient_scope").
        self.insufficient_scope = insufficient_scope
        # Which kind of credential was refused, for the audit record.
        self.method = method


class Authenticator:
    def __init__(self, *, owner: str, jwt_verifier: JWTVerifier | None) -> None:
        self.owner = owner
        self.jwt = jwt_verifier

    async def authenticate(self, handler: RequestHandler) -> Principal:
        request = handler.request
        if "token" in request.query_arguments:
            raise Unauthenticated("token in the query string is refused", presented=True)
        header = request.headers.get("Authorization", "")
        # Cookies must never authenticate here, including as a fallback inside the IdentityProvider.
        had_cookie = request.headers.pop("Cookie", None) is not None
        if not header:
            reason = "cookie-only request (no Authorization header)" if had_cookie else "no credentials"
            raise Unauthenticated(reason, presented=False)
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() not in _SCHEMES or not token:
            raise Unauthenticated("Authorization must be 'Bearer <token>' or 'token <token>'", presented=True)

        identity_provider = handler.identity_provider
        server_token = identity_provider.token or ""
        if server_token and hmac.compare_digest(token.encode(), server_token.encode()):
            return self.owner_principal()
        if self.jwt is not None and looks_like_jwt(token):
            try:
                return await self.jwt.authenticate(token)
            except InvalidCredentials as exc:
                raise Unauthenticated(str(exc), presented=True, method=AuthMethod.JWT) from None
        return await self._from_identity_provider(handler, identity_provider, token)

    def owner_principal(self) -> Principal:
        return Principal(
            user=self.owner,
            auth=AuthMethod.OWNER_TOKEN,
            realm="jupyter",
            is_owner=True,
            display_name=self.owner,
        )

    async def _from_identity_provider(self, handler: RequestHandler, identity_provider: Any, token: str) -> Principal:
        # Without auth the default IdentityProvider calls everyone an anonymous user; that is no identity.
        if not identity_provider.auth_enabled:
            raise Unauthenticated(
                "token not accepted (server authentication is disabled)", presented=True, method=AuthMethod.JUPYTER
            )
        user = identity_provider.get_user(handler)
        if inspect.isawaitable(user):
            user = await user
        if user is None:
            await _refuse_valid_hub_token(identity_provider, token)
            raise Unauthenticated("token not accepted", presented=True, method=AuthMethod.JUPYTER)
        if not is_plain_name(user.username):
            raise Unauthenticated("user names may not contain ':'", presented=True, method=AuthMethod.JUPYTER)
        return self.principal_for_jupyter_user(user)

    def principal_for_server_request(self, handler: RequestHandler, user: Any) -> Principal | None:
        """The principal behind a request Jupyter authenticated itself (REST, websockets).

        With Jupyter's own token/password provider, whoever got in holds the server's
        secret, which makes them the owner; other providers (JupyterHub) name the user.
        """
        identity_provider = handler.identity_provider
        if user is None or not identity_provider.auth_enabled or not is_plain_name(user.username):
            return None
        if type(identity_provider) in (IdentityProvider, PasswordIdentityProvider):
            return self.owner_principal()
        return self.principal_for_jupyter_user(user)

    def principal_for_jupyter_user(self, user: Any) -> Principal:
        """A user resolved by Jupyter's IdentityProvider (under JupyterHub: a Hub token)."""
        hub_user = getattr(user, "hub_user", None) or {}
        if hub_user.get("kind") == "service":
            name = SERVICE_PREFIX + user.username
            return Principal(user=name, auth=AuthMethod.JUPYTER, realm="jupyter", display_name=name)
        groups = tuple(g for g in hub_user.get("groups", ()) if isinstance(g, str) and is_plain_name(g))
        return Principal(
            user=user.username,
            auth=AuthMethod.JUPYTER,
            realm="jupyter",
            groups=groups,
            is_owner=user.username == self.owner,
            is_hub_admin=hub_user.get("admin") is True,
            display_name=getattr(user, "display_name", "") or user.username,
        )


async def _refuse_valid_hub_token(identity_provider: Any, token: str) -> None:
    """A hub token the hub knows, whose holder may not use this server: say so (403), not "invalid" (401)."""
    hub_auth = getattr(identity_provider, "hub_auth", None)
    if hub_auth is None:
        return
    # Cached like the IdentityProvider's own lookup; an unknown or revoked token comes back as None.
    model = await hub_auth.user_for_token(token, sync=False)
    if not model:
        return
    kind = "service" if model.get("kind") == "service" else "user"
    raise Unauthenticated(
        f"{kind} {model.get('name')} may not use this server: it is not shared with them",
        presented=True,
        method=AuthMethod.JUPYTER,
        insufficient_scope=True,
    )
