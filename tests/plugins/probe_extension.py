"""A third-party server extension the policy knows nothing about: one authenticated route."""

from __future__ import annotations

from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.utils import url_path_join
from tornado import web


class ProbeHandler(JupyterHandler):
    @web.authenticated
    def get(self) -> None:
        self.finish("pong")


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "probe_extension"}]


def _load_jupyter_server_extension(serverapp) -> None:
    route = url_path_join(serverapp.web_app.settings["base_url"], "probe/ping")
    serverapp.web_app.add_handlers(".*$", [(route, ProbeHandler)])
