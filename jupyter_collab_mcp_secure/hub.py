"""Running under JupyterHub: how fast hub-side changes reach this server, and how often activity is bumped.

CollabMCP inherits HubConfig, so `c.CollabMCP.<trait>` sets these.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from traitlets import Float, HasTraits, Int

from .config_ranges import positive


def under_jupyterhub() -> bool:
    return bool(os.environ.get("JUPYTERHUB_API_TOKEN"))


class HubConfig(HasTraits):
    hub_token_cache_seconds = Int(
        10,
        min=1,
        help=(
            "Seconds this server trusts the hub's answer about a token (HubOAuth.cache_max_age, 300 in "
            "JupyterHub). An unshare, a group change, a hub admin flag removed or a revoked token takes "
            "effect within about this long (plus the hub's own answer time). Lower is fresher and costs "
            "one hub API request per token per period."
        ),
    ).tag(config=True)

    activity_bump_interval = Float(
        30,
        help=(
            "While an MCP tool call is in flight, the server's last activity is moved to now every this "
            "many seconds, so the hub's idle culler does not stop a server during a long silent cell. "
            "The culler's --timeout must exceed JUPYTERHUB_ACTIVITY_INTERVAL plus this period."
        ),
    ).tag(config=True)

    _hub_positive = positive("activity_bump_interval")

    def apply_hub_token_cache(self, identity_provider: Any, log: logging.Logger) -> None:
        hub_auth = getattr(identity_provider, "hub_auth", None)
        if hub_auth is None:
            return
        hub_auth.cache_max_age = self.hub_token_cache_seconds
        # The cache exists once anything asked the hub; HubOAuth builds it from cache_max_age otherwise.
        if hub_auth.trait_has_value("cache"):
            hub_auth.cache.max_age = hub_auth.cache.purge_interval = self.hub_token_cache_seconds
        log.info("hub token answers are trusted for %d s (hub_token_cache_seconds)", self.hub_token_cache_seconds)
