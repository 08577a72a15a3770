"""An IdentityProvider that resolves API tokens from a table, standing in for JupyterHub's HubOAuth.

Like the Hub's provider it knows tokens the server itself did not issue and
attaches the Hub user model (with groups) to the user.
"""

from __future__ import annotations

import json
import os

from jupyter_server.auth.identity import IdentityProvider, User


class TableIdentityProvider(IdentityProvider):
    def get_user(self, handler):
        table = json.loads(os.environ["TABLE_IDENTITY_TOKENS"])
        presented = self.get_token(handler)
        entry = table.get(presented or "")
        if entry is None:
            return super().get_user(handler)
        # Like the Hub's provider: a token in the header, so no XSRF cookie is needed.
        handler._token_authenticated = True
        user = User(username=entry["name"], display_name=entry["name"].title())
        user.hub_user = {"name": entry["name"], "groups": entry.get("groups", [])}
        return user
