"""The route table: documented as the code has it, and each row known by URL and handler class together."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from jupyter_server.base.handlers import FileFindHandler, Template404
from jupyter_server.services.contents.handlers import ContentsHandler
from jupyterlab_server.handlers import LabHandler
from jupyterlab_server.settings_handler import SettingsHandler

from jupyter_collab_mcp_secure.policy.routes import PUBLIC, UNKNOWN, RouteGate, resource_of, route_table_markdown

DOCS = Path(__file__).parent.parent / "docs" / "policies.md"


def test_the_documented_route_table_is_the_codes():
    assert route_table_markdown() in DOCS.read_text()


def test_a_route_is_known_only_with_its_own_handler():
    assert resource_of("lab/api/settings/x", SettingsHandler) == "lab_settings"
    assert resource_of("api/contents/a/b.ipynb", ContentsHandler) == "contents"
    assert resource_of("static/lab/main.js", FileFindHandler) == PUBLIC
    # A known handler class mounted elsewhere (an extension serving its own folder) is unknown.
    assert resource_of("myext/static/x", FileFindHandler) == UNKNOWN
    assert resource_of("lab/api/settings", ContentsHandler) == UNKNOWN
    assert resource_of("whatever/at/all", Template404) == PUBLIC
    assert resource_of("lab/tree/x.ipynb", SettingsHandler) == UNKNOWN


def handler(cls, method, path, user):
    instance = cls.__new__(cls)
    instance.request = SimpleNamespace(method=method, path=path)
    instance._jupyter_current_user = user
    return instance


async def test_the_gate_asks_the_policy_for_everything_but_public_routes_and_pages():
    asked = []

    async def decide(handler, action, resource):
        asked.append((type(handler).__name__, action, resource))
        return resource != UNKNOWN

    gate = RouteGate("/base/", decide)
    assert (gate.relative("/base/lab"), gate.relative("/base"), gate.relative("/elsewhere")) == ("lab", "", None)
    someone = object()
    assert await gate.allows(handler(ContentsHandler, "PUT", "/base/api/contents/a.txt", someone))
    assert not await gate.allows(handler(ContentsHandler, "GET", "/base/myext/data", someone))
    assert asked == [("ContentsHandler", "write", "contents"), ("ContentsHandler", "read", UNKNOWN)]
    # Without an identity: pages (the login redirect), public routes and CORS preflights only.
    assert await gate.allows(handler(LabHandler, "GET", "/base/lab", None))
    assert await gate.allows(handler(FileFindHandler, "GET", "/base/static/x.js", None))
    assert await gate.allows(handler(ContentsHandler, "OPTIONS", "/base/api/contents", None))
    assert not await gate.allows(handler(ContentsHandler, "GET", "/base/api/contents", None))
    assert not await gate.allows(handler(ContentsHandler, "OPTIONS", "/base/myext", None))
    assert len(asked) == 2
