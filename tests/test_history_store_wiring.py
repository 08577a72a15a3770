"""install_ystore: rooms made by browsers and by the server share one store outside the served root."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

from jupyter_server_ydoc.app import YDocExtension
from jupyter_server_ydoc.stores import SQLiteYStore, TempFileYStore
from traitlets.config import Config

from jupyter_collab_mcp_secure.rtc.ystore import CollabYStore, install_ystore, store_class_in_use

log = logging.getLogger("test")


def serverapp_with(ydoc_app: YDocExtension | None) -> SimpleNamespace:
    points = {} if ydoc_app is None else {"jupyter_server_ydoc": SimpleNamespace(app=ydoc_app)}
    return SimpleNamespace(extension_manager=SimpleNamespace(extension_points=points))


def test_install_binds_the_store_to_the_state_folder_whatever_the_config(tmp_path: Path) -> None:
    ydoc_app = YDocExtension()
    database = tmp_path / "state" / "ystore.sqlite"
    installed = install_ystore(serverapp_with(ydoc_app), database, log)
    assert installed is ydoc_app.ystore_class and store_class_in_use(ydoc_app) is installed
    assert installed.database() == database
    # Rooms created by get_document() pass no config; handler rooms pass the server's.
    config = Config()
    config.SQLiteYStore.db_path = str(tmp_path / "root" / ".jupyter_ystore.db")
    for store in (installed(path=".file:x.y"), installed(path=".file:x.y", config=config)):
        assert store.db_path == str(database)


def test_install_leaves_other_stores_and_late_setups_alone(tmp_path: Path) -> None:
    other = YDocExtension()
    other.ystore_class = TempFileYStore
    assert install_ystore(serverapp_with(other), tmp_path / "s.sqlite", log) is None
    assert other.ystore_class is TempFileYStore

    late = YDocExtension()
    late.ywebsocket_server = object()  # initialized before us: its handlers hold the old class
    assert install_ystore(serverapp_with(late), tmp_path / "s.sqlite", log) is None
    assert late.ystore_class is SQLiteYStore

    assert install_ystore(serverapp_with(None), tmp_path / "s.sqlite", log) is None


def test_the_configured_class_keeps_the_default_state_folder() -> None:
    assert CollabYStore.database().parts[-2:] == ("collab_mcp_secure", "ystore.sqlite")
